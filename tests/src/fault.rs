//! A small fault-injecting HTTP/1.1 proxy between an AWS SDK client and `moto_server`.
//!
//! ```text
//!   SDK ──http──▶ FaultProxy (127.0.0.1:free) ──▶ moto_server
//!                   │ down?            → close the connection (transport error)
//!                   │ fault queued for the operation (X-Amz-Target) →
//!                   │   Throttle 400 ThrottlingException · Unavailable 503 · ServerError 500
//!                   │   Invalid 400 InvalidParameterException · Drop (close, no answer)
//!                   │   RejectTooNew(i): forward, then answer rejectedLogEventsInfo
//!                   │   Delay(d): forward, then hold the answer for d
//!                   └ otherwise forward as is
//! ```
//!
//! Faults are queued per operation name (`PutLogEvents`) and each applies to one request. The
//! proxy counts requests per operation and keeps the bodies of `PutLogEvents` requests that
//! reached moto, so a test can compare what was sent with what was stored.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One injected failure, applied to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException`.
    Throttle,
    /// 503 `ServiceUnavailableException`.
    Unavailable,
    /// 500 `InternalFailure`.
    ServerError,
    /// 400 `InvalidParameterException` (must not be retried as is).
    Invalid,
    /// The connection closes without an answer.
    Drop,
    /// Forwarded; the answer says events from this index on were too new.
    RejectTooNew(usize),
    /// Forwarded; the answer is held back this long (moto has stored the events already).
    Delay(Duration),
}

#[derive(Debug, Default)]
struct State {
    down: bool,
    faults: HashMap<String, VecDeque<Fault>>,
    requests: HashMap<String, usize>,
    injected: usize,
    forwarded_puts: Vec<Vec<u8>>,
}

/// A running proxy; stops on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("upstream {upstream} is not http://IP:PORT"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = serve(client, upstream, state).await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// While down, every connection is closed at once.
    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
    }

    /// Queues `faults` for the next requests of `operation` (e.g. `PutLogEvents`).
    pub fn inject(&self, operation: &str, faults: impl IntoIterator<Item = Fault>) {
        self.with(|s| {
            s.faults
                .entry(operation.to_owned())
                .or_default()
                .extend(faults)
        });
    }

    /// Requests seen for `operation`, faulted or not.
    pub fn requests(&self, operation: &str) -> usize {
        self.with(|s| s.requests.get(operation).copied().unwrap_or(0))
    }

    /// Faults applied so far.
    pub fn injected(&self) -> usize {
        self.with(|s| s.injected)
    }

    /// Faults still queued for `operation`.
    pub fn pending(&self, operation: &str) -> usize {
        self.with(|s| s.faults.get(operation).map_or(0, VecDeque::len))
    }

    /// Bodies of the `PutLogEvents` requests that reached moto, in order.
    pub fn forwarded_puts(&self) -> Vec<Vec<u8>> {
        self.with(|s| s.forwarded_puts.clone())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

/// A parsed request or response: the head as text and the body.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.head.clone().into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one HTTP/1.1 message (head, then a Content-Length or chunked body); `None` at EOF.
async fn read_message<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<Option<Message>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            bail!("connection closed inside a message head");
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut m = Message {
        head,
        body: Vec::new(),
    };
    if let Some(len) = m.header("content-length") {
        let len: usize = len.parse().context("content-length")?;
        m.body = vec![0; len];
        r.read_exact(&mut m.body).await?;
    } else if m
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        // De-chunk, and rewrite the head to a Content-Length.
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await?;
            chunk.truncate(n);
            m.body.extend_from_slice(&chunk);
            if n == 0 {
                break;
            }
        }
        let lines: Vec<&str> = m
            .head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding"))
            .filter(|l| !l.is_empty())
            .collect();
        m.head = format!(
            "{}\r\ncontent-length: {}\r\n\r\n",
            lines.join("\r\n"),
            m.body.len()
        );
    }
    Ok(Some(m))
}

fn json_answer(status: &str, kind: &str) -> Vec<u8> {
    let body = format!("{{\"__type\":\"{kind}\",\"message\":\"injected by FaultProxy\"}}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-errortype: {kind}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn forward(upstream: SocketAddr, request: &Message) -> Result<Message> {
    let stream = TcpStream::connect(upstream).await?;
    let (rd, mut wr) = stream.into_split();
    wr.write_all(&request.bytes()).await?;
    let mut rd = BufReader::new(rd);
    read_message(&mut rd)
        .await?
        .context("moto closed the connection without an answer")
}

async fn serve(client: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) -> Result<()> {
    let (rd, mut wr) = client.into_split();
    let mut rd = BufReader::new(rd);
    while let Some(request) = read_message(&mut rd).await? {
        let operation = request
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_owned();
        let (down, fault) = {
            let mut s = match state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            *s.requests.entry(operation.clone()).or_default() += 1;
            let fault = if s.down {
                None
            } else {
                s.faults.get_mut(&operation).and_then(VecDeque::pop_front)
            };
            if fault.is_some() {
                s.injected += 1;
            }
            (s.down, fault)
        };
        if down {
            return Ok(());
        }
        let answer = match fault {
            Some(Fault::Throttle) => json_answer("400 Bad Request", "ThrottlingException"),
            Some(Fault::Unavailable) => {
                json_answer("503 Service Unavailable", "ServiceUnavailableException")
            }
            Some(Fault::ServerError) => json_answer("500 Internal Server Error", "InternalFailure"),
            Some(Fault::Invalid) => json_answer("400 Bad Request", "InvalidParameterException"),
            Some(Fault::Drop) => return Ok(()),
            other => {
                let response = forward(upstream, &request).await?;
                if operation == "PutLogEvents" && response.head.starts_with("HTTP/1.1 200") {
                    if let Ok(mut s) = state.lock() {
                        s.forwarded_puts.push(request.body.clone());
                    }
                }
                match other {
                    Some(Fault::RejectTooNew(i)) => {
                        let body = format!(
                            "{{\"rejectedLogEventsInfo\":{{\"tooNewLogEventStartIndex\":{i}}}}}"
                        );
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    }
                    Some(Fault::Delay(d)) => {
                        tokio::time::sleep(d).await;
                        response.bytes()
                    }
                    _ => response.bytes(),
                }
            }
        };
        wr.write_all(&answer).await?;
    }
    Ok(())
}
