//! The CloudWatch Logs sink: `PutLogEvents` to one stream per gateway instance in the
//! deployment's log group. The stream is created if missing (the group too, when configured).
//! The SDK's own retries are off: the shipper retries with its backoff, and decides what is
//! retried (throttling, service unavailable, 5xx, transport) and what is not (invalid input).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;
use sallyport_core::audit::batch::{Limits, LogEvent};

use super::{Delivery, RejectReason, Sink, SinkError};

/// Builds a CloudWatch Logs client from the default AWS configuration chain, with an optional
/// region and endpoint override, no SDK retries, and bounded timeouts.
pub async fn cloudwatch_client(region: Option<String>, endpoint_url: Option<String>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    if let Some(endpoint_url) = endpoint_url {
        loader = loader.endpoint_url(endpoint_url);
    }
    let shared = loader.load().await;
    let config = aws_sdk_cloudwatchlogs::config::Builder::from(&shared)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Ships to `GROUP` / `STREAM`.
#[derive(Debug, Clone)]
pub struct CloudWatchSink {
    client: Client,
    group: String,
    stream: String,
    create_group: bool,
    name: String,
}

impl CloudWatchSink {
    /// A sink for one stream of one group; `create_group` also creates the group if missing
    /// (normally the deployment creates it, with its KMS key and retention).
    pub fn new(
        client: Client,
        group: impl Into<String>,
        stream: impl Into<String>,
        create_group: bool,
    ) -> Self {
        let (group, stream) = (group.into(), stream.into());
        let name = format!("cloudwatch:{group}:{stream}");
        Self {
            client,
            group,
            stream,
            create_group,
            name,
        }
    }

    async fn create_stream(
        &self,
    ) -> Result<
        (),
        SdkError<
            aws_sdk_cloudwatchlogs::operation::create_log_stream::CreateLogStreamError,
            aws_sdk_cloudwatchlogs::config::http::HttpResponse,
        >,
    > {
        self.client
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .send()
            .await
            .map(|_| ())
    }
}

/// What to do about a failed call.
fn classify<E>(e: &SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(e).to_string();
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err().code() {
                Some("ResourceNotFoundException") => SinkError::Missing(text),
                Some(
                    "InvalidParameterException" | "SerializationException" | "ValidationException",
                ) => SinkError::Refused(text),
                _ if status == 413 => SinkError::Refused(text),
                // Throttling, service unavailable, 5xx, and anything the operator must fix
                // (credentials, permissions): retried, so nothing is lost meanwhile.
                _ => SinkError::Retryable(text),
            }
        }
        _ => SinkError::Retryable(text),
    }
}

fn index_range(start: Option<i32>, end: Option<i32>, len: usize) -> std::ops::Range<usize> {
    let at = |i: Option<i32>, default: usize| {
        i.map_or(default, |v| usize::try_from(v).unwrap_or(0).min(len))
    };
    at(start, 0)..at(end, len)
}

impl Sink for CloudWatchSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn limits(&self) -> Limits {
        Limits::CLOUDWATCH
    }

    async fn prepare(&mut self) -> Result<(), SinkError> {
        match self.create_stream().await {
            Ok(()) => {
                tracing::info!(group = %self.group, stream = %self.stream, "log stream created");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e)
                if self.create_group
                    && e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                let created = self
                    .client
                    .create_log_group()
                    .log_group_name(&self.group)
                    .send()
                    .await;
                if let Err(g) = created {
                    if !g
                        .as_service_error()
                        .is_some_and(|s| s.is_resource_already_exists_exception())
                    {
                        return Err(SinkError::Retryable(DisplayErrorContext(&g).to_string()));
                    }
                }
                tracing::info!(group = %self.group, "log group created");
                match self.create_stream().await {
                    Ok(()) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_already_exists_exception()) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(SinkError::Retryable(DisplayErrorContext(&e).to_string())),
                }
            }
            // A missing group is the deployment's to create: retried until it exists.
            Err(e) => Err(SinkError::Retryable(DisplayErrorContext(&e).to_string())),
        }
    }

    async fn deliver(&mut self, events: &[LogEvent]) -> Result<Delivery, SinkError> {
        let mut input = Vec::with_capacity(events.len());
        for e in events {
            let event = InputLogEvent::builder()
                .timestamp(e.time_ms)
                .message(e.message.clone())
                .build()
                .map_err(|b| SinkError::Refused(b.to_string()))?;
            input.push(event);
        }
        let result = self
            .client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .set_log_events(Some(input))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            // The same batch was accepted before (a retry after a lost answer).
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_data_already_accepted_exception()) =>
            {
                return Ok(Delivery::default());
            }
            Err(e) => return Err(classify(&e)),
        };
        let mut delivery = Delivery::default();
        if let Some(info) = out.rejected_log_events_info() {
            let len = events.len();
            let mut mark = |range: std::ops::Range<usize>, why: RejectReason| {
                for i in range {
                    if !delivery.rejected.iter().any(|(j, _)| *j == i) {
                        delivery.rejected.push((i, why));
                    }
                }
            };
            if info.too_new_log_event_start_index().is_some() {
                mark(
                    index_range(info.too_new_log_event_start_index(), None, len),
                    RejectReason::TooNew,
                );
            }
            if info.too_old_log_event_end_index().is_some() {
                mark(
                    index_range(None, info.too_old_log_event_end_index(), len),
                    RejectReason::TooOld,
                );
            }
            if info.expired_log_event_end_index().is_some() {
                mark(
                    index_range(None, info.expired_log_event_end_index(), len),
                    RejectReason::Expired,
                );
            }
            delivery.rejected.sort_unstable_by_key(|(i, _)| *i);
        }
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_index_ranges() {
        // tooNewLogEventStartIndex is inclusive, the end indexes exclusive.
        assert_eq!(index_range(Some(3), None, 5), 3..5);
        assert_eq!(index_range(None, Some(2), 5), 0..2);
        assert_eq!(index_range(None, Some(99), 5), 0..5);
        assert_eq!(index_range(Some(-1), None, 5), 0..5);
    }
}
