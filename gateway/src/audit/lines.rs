//! JSON lines on stdout (for journald or the CloudWatch agent), or on any async writer.

use sallyport_core::audit::batch::{Limits, LogEvent};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Delivery, Sink, SinkError};

/// Writes each event's flat JSON as one line.
#[derive(Debug)]
pub struct LinesSink<W> {
    name: String,
    out: W,
}

impl LinesSink<tokio::io::Stdout> {
    /// The `stdout` sink.
    pub fn stdout() -> Self {
        Self::new("stdout", tokio::io::stdout())
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> LinesSink<W> {
    /// A sink named `name` (its checkpoint key) writing to `out`.
    pub fn new(name: impl Into<String>, out: W) -> Self {
        Self {
            name: name.into(),
            out,
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Sink for LinesSink<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn limits(&self) -> Limits {
        Limits::LINES
    }

    async fn prepare(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn deliver(&mut self, events: &[LogEvent]) -> Result<Delivery, SinkError> {
        let mut buf = Vec::with_capacity(events.iter().map(|e| e.message.len() + 1).sum());
        for e in events {
            buf.extend_from_slice(e.message.as_bytes());
            buf.push(b'\n');
        }
        self.out
            .write_all(&buf)
            .await
            .map_err(|e| SinkError::Retryable(format!("{}: {e}", self.name)))?;
        self.out
            .flush()
            .await
            .map_err(|e| SinkError::Retryable(format!("{}: {e}", self.name)))?;
        Ok(Delivery::default())
    }
}
