//! Reading back what reached a CloudWatch Logs stream (served by `moto_server`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_cloudwatchlogs::Client;
use serde_json::Value;

/// A client for `endpoint` with the dummy credentials moto accepts.
pub async fn client(endpoint: &str) -> Client {
    let creds =
        aws_sdk_cloudwatchlogs::config::Credentials::new("test", "test", None, None, "test");
    let config = aws_sdk_cloudwatchlogs::config::Builder::new()
        .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// Creates a log group (the deployment's job in production).
pub async fn create_group(client: &Client, group: &str) -> Result<()> {
    client
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .context("CreateLogGroup")?;
    Ok(())
}

/// Every event in the stream, oldest first, as (timestamp, parsed message).
pub async fn events(client: &Client, group: &str, stream: &str) -> Result<Vec<(i64, Value)>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .limit(10_000)
            .set_next_token(token.clone())
            .send()
            .await
            .context("GetLogEvents")?;
        let got = page.events();
        for e in got {
            let message = e.message().unwrap_or_default();
            let value: Value = serde_json::from_str(message)
                .with_context(|| format!("not JSON: {message:.200}"))?;
            out.push((e.timestamp().unwrap_or_default(), value));
        }
        let next = page.next_forward_token().map(str::to_owned);
        if got.is_empty() || next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok(out)
}

/// Events by journal seq, parts of split events joined back into the whole message. Each
/// seq maps to every copy that arrived (more than one after a re-send).
pub fn by_seq(events: &[(i64, Value)]) -> Result<BTreeMap<u64, Vec<Value>>> {
    let mut whole: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    let mut parts: BTreeMap<(u64, String), BTreeMap<u64, String>> = BTreeMap::new();
    for (_, v) in events {
        let seq = v["seq"].as_u64().context("an event without seq")?;
        match v.get("part").and_then(Value::as_u64) {
            None => whole.entry(seq).or_default().push(v.clone()),
            Some(part) => {
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let chunk = v["chunk"].as_str().unwrap_or_default().to_owned();
                parts.entry((seq, id)).or_default().insert(part, chunk);
            }
        }
    }
    for ((seq, _), chunks) in parts {
        let text: String = chunks.into_values().collect();
        let v: Value = serde_json::from_str(&text).context("parts do not join into JSON")?;
        whole.entry(seq).or_default().push(v);
    }
    Ok(whole)
}
