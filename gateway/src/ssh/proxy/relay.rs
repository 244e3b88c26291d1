//! Relaying one proxied session channel between the engineer's client and the target, once the
//! target's channel has started its shell, command or subsystem.
//!
//! ```text
//!  client ──data / EOF / window-change / signal──▶ target
//!  client ◀──data / stderr / exit-status / exit-signal / EOF / close── target
//! ```
//!
//! - **Flow control.** Each write waits for the receiver's SSH window (russh's `ChannelTx`).
//!   Target to client, a shut window stops this direction's reads, so the onward connection's
//!   bounded queue fills and the target's window is not replenished. Client to target, the
//!   client's messages go through a queue of at most 256 messages (8 MiB): russh grants the
//!   client window on receipt and stops the whole connection when a channel's queue is full,
//!   so without it a target that reads only as its output is read (`cat`) would stall both
//!   directions for good. A slow target fills the queue and then holds the connection, as in
//!   jump mode. For the same reason the target's output keeps being read while the writer to
//!   the target waits for it (up to 64 MiB queued for the client; beyond that, with neither
//!   side reading, the channel is closed); otherwise reading stops at 1 MiB queued.
//!   While either queue is past half of its bound, the relay holds the connection's
//!   [`WindowThrottle`]: the client's window is then topped up by only a trickle, so a client
//!   that sends faster than the target takes (or reads slower than the target writes) is held
//!   back at the SSH layer instead of filling the queues; the hold ends below a quarter.
//! - **Order.** Messages go on in the order they came: exit status before EOF and close as the
//!   target sent them. The channel ends when the target closes it (the client's channel is
//!   closed after everything before was sent), when the client closes it (the target's is
//!   closed), or when the session stops it (revoked, expired, idle, shutdown).
//! - **Observers** ([`super::observe`]) see every request and data chunk, in order.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use russh::{client, server, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use sallyport_core::audit::TunnelCloseReason;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::observe::ChannelObserver;
use super::throttle::{ThrottleGuard, WindowThrottle};
use crate::ssh::relay::{stopped, StopSignal};

/// Client messages (data up to one SSH packet each) queued for the target: at most 8 MiB.
const UP_QUEUE: usize = 256;

/// Target-to-client bytes queued before the target is no longer read (while the client-to-
/// target direction is not waiting for the target).
const DOWN_SOFT: usize = 1024 * 1024;

/// Target-to-client bytes queued at most: past it, neither side is reading and the channel is
/// closed.
const DOWN_HARD: usize = 64 * 1024 * 1024;

/// How long closing a channel may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The observers of one channel (called from both directions, never across an await).
pub struct Observers(Mutex<Vec<Box<dyn ChannelObserver>>>);

impl Observers {
    /// These observers.
    pub fn new(list: Vec<Box<dyn ChannelObserver>>) -> Self {
        Self(Mutex::new(list))
    }

    /// Calls `f` on each.
    pub fn each(&self, mut f: impl FnMut(&mut dyn ChannelObserver)) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for o in list.iter_mut() {
            f(o.as_mut());
        }
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayEnd {
    /// Why.
    pub reason: TunnelCloseReason,
    /// The target's exit status, if it sent one.
    pub exit_status: Option<u32>,
    /// Bytes from the client to the target.
    pub to_target: u64,
    /// Bytes from the target to the client (stdout and stderr).
    pub to_client: u64,
}

/// The two channels and what watches them.
pub struct Ends<'a> {
    /// Client side, read.
    pub client_read: &'a mut ChannelReadHalf,
    /// Client side, write.
    pub client_write: &'a ChannelWriteHalf<server::Msg>,
    /// The session handle (for exit-signal, which the write half cannot send).
    pub server: &'a server::Handle,
    /// Target side, read.
    pub target_read: ChannelReadHalf,
    /// Target side, write.
    pub target_write: ChannelWriteHalf<client::Msg>,
    /// Observers.
    pub observers: &'a Observers,
    /// Client data that arrived before the target was ready (sent first).
    pub pending: Vec<Vec<u8>>,
    /// Whether the client's EOF arrived before the target was ready.
    pub pending_eof: bool,
    /// The connection's window throttle, held while the queues run high.
    pub throttle: &'a Arc<WindowThrottle>,
}

/// Holds the client back while this channel's queues run high (see the module docs).
struct Backpressure<'a> {
    throttle: &'a Arc<WindowThrottle>,
    held: Mutex<Option<ThrottleGuard>>,
}

impl Backpressure<'_> {
    /// Re-judges with the current queue sizes (messages up, bytes down).
    fn update(&self, up_queued: usize, down_queued: usize) {
        let high = up_queued > UP_QUEUE / 2 || down_queued > DOWN_SOFT / 2;
        let low = up_queued < UP_QUEUE / 4 && down_queued < DOWN_SOFT / 4;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if high && held.is_none() {
            *held = Some(self.throttle.hold());
        } else if low {
            *held = None;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Up {
    /// Everything the client sent (its EOF included) went to the target.
    ClientEof,
    TargetGone,
}

#[derive(Debug, Clone, Copy)]
enum Down {
    TargetClosed,
    ClientGone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownRead {
    /// The target closed the channel (everything before is queued).
    Closed,
    /// More than DOWN_HARD bytes are queued for a client that does not read them.
    Overflow,
}

/// The payload bytes of a message (what the queues count).
fn payload(msg: &ChannelMsg) -> usize {
    match msg {
        ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => data.len(),
        _ => 0,
    }
}

/// Relays until the channel ends; closes both sides.
pub async fn relay(
    ends: Ends<'_>,
    stop: &mut StopSignal,
    expires: Instant,
    idle_timeout: Duration,
) -> RelayEnd {
    let Ends {
        client_read,
        client_write,
        server,
        mut target_read,
        target_write,
        observers,
        pending,
        pending_eof,
        throttle,
    } = ends;
    let backpressure = Backpressure {
        throttle,
        held: Mutex::new(None),
    };
    let up_queued = AtomicUsize::new(0);
    let client_id = client_write.id();
    let start = Instant::now();
    let up_bytes = AtomicU64::new(0);
    let down_bytes = AtomicU64::new(0);
    let exit_status = Mutex::new(None::<u32>);
    let down_queued = AtomicUsize::new(0);
    let up_waiting = AtomicBool::new(false);
    let moved = Notify::new();
    let last = AtomicU64::new(0);
    let touch = || {
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    };

    let reason = {
        // Client to target in two halves joined by a bounded queue: the reader always takes
        // what russh delivers (a full russh queue would stop the whole connection, the writes
        // to the client included, and with a target that waits for its output to be read
        // before it reads more, as `cat` does, nothing would move again); the writer waits
        // for the target's window.
        let (up_tx, mut up_rx) = mpsc::channel::<ChannelMsg>(UP_QUEUE);
        let up_read = async {
            loop {
                let msg = match client_read.wait().await {
                    Some(ChannelMsg::Close) | None => return,
                    Some(msg @ ChannelMsg::Data { .. }) => msg,
                    Some(msg @ ChannelMsg::Eof) => msg,
                    Some(msg @ ChannelMsg::WindowChange { .. }) => msg,
                    Some(msg @ ChannelMsg::Signal { .. }) => msg,
                    // A second start request, env after the start, window adjustments:
                    // nothing for the target.
                    Some(_) => continue,
                };
                let queued = up_queued.fetch_add(1, Ordering::Relaxed) + 1;
                backpressure.update(queued, down_queued.load(Ordering::Relaxed));
                if up_tx.send(msg).await.is_err() {
                    return;
                }
            }
        };
        let up_write = async {
            for chunk in pending {
                observers.each(|o| o.client_data(&chunk));
                let n = chunk.len() as u64;
                up_waiting.store(true, Ordering::Relaxed);
                moved.notify_waiters();
                let written = target_write.data(&chunk[..]).await;
                up_waiting.store(false, Ordering::Relaxed);
                if written.is_err() {
                    return Up::TargetGone;
                }
                up_bytes.fetch_add(n, Ordering::Relaxed);
            }
            let mut eof = pending_eof;
            if eof && target_write.eof().await.is_err() {
                return Up::TargetGone;
            }
            while let Some(msg) = up_rx.recv().await {
                let queued = up_queued.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
                backpressure.update(queued, down_queued.load(Ordering::Relaxed));
                match msg {
                    ChannelMsg::Data { data } if !eof => {
                        observers.each(|o| o.client_data(data.as_ref()));
                        let n = data.len() as u64;
                        up_waiting.store(true, Ordering::Relaxed);
                        moved.notify_waiters();
                        let written = target_write.data_bytes(data).await;
                        up_waiting.store(false, Ordering::Relaxed);
                        if written.is_err() {
                            return Up::TargetGone;
                        }
                        up_bytes.fetch_add(n, Ordering::Relaxed);
                        touch();
                    }
                    ChannelMsg::Eof if !eof => {
                        eof = true;
                        let _ = target_write.eof().await;
                    }
                    ChannelMsg::WindowChange {
                        col_width,
                        row_height,
                        pix_width,
                        pix_height,
                    } => {
                        observers.each(|o| o.resize(col_width, row_height));
                        let _ = target_write
                            .window_change(col_width, row_height, pix_width, pix_height)
                            .await;
                    }
                    ChannelMsg::Signal { signal } => {
                        let _ = target_write.signal(signal).await;
                    }
                    _ => {}
                }
            }
            Up::ClientEof
        };
        // Target to client, also in two halves. The reader stops at DOWN_SOFT queued bytes
        // (backpressure to the target through the onward connection) unless the client-to-target
        // writer is waiting for the target: then the target may be waiting for its output to be
        // read, and reading it is what lets both directions move again. DOWN_HARD bounds that.
        let (down_tx, mut down_rx) = mpsc::unbounded_channel::<ChannelMsg>();
        let down_read = async {
            let tx = down_tx;
            loop {
                loop {
                    let notified = moved.notified();
                    let queued = down_queued.load(Ordering::Relaxed);
                    if queued > DOWN_HARD {
                        return DownRead::Overflow;
                    }
                    if queued < DOWN_SOFT || up_waiting.load(Ordering::Relaxed) {
                        break;
                    }
                    notified.await;
                }
                let msg = match target_read.wait().await {
                    None | Some(ChannelMsg::Close) => return DownRead::Closed,
                    Some(msg) => msg,
                };
                let queued = down_queued.fetch_add(payload(&msg), Ordering::Relaxed);
                backpressure.update(up_queued.load(Ordering::Relaxed), queued + payload(&msg));
                if tx.send(msg).is_err() {
                    return DownRead::Closed;
                }
            }
        };
        let down_write = async {
            while let Some(msg) = down_rx.recv().await {
                let n = payload(&msg);
                let sent = match msg {
                    ChannelMsg::Data { data } => {
                        observers.each(|o| o.target_data(data.as_ref()));
                        let sent = client_write.data_bytes(data).await;
                        down_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        touch();
                        sent.is_ok()
                    }
                    ChannelMsg::ExtendedData { data, ext } => {
                        observers.each(|o| o.target_extended_data(ext, data.as_ref()));
                        let sent = client_write.extended_data_bytes(ext, data).await;
                        down_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        touch();
                        sent.is_ok()
                    }
                    ChannelMsg::Eof => client_write.eof().await.is_ok(),
                    ChannelMsg::ExitStatus { exit_status: code } => {
                        observers.each(|o| o.exit_status(code));
                        *exit_status.lock().unwrap_or_else(PoisonError::into_inner) = Some(code);
                        client_write.exit_status(code).await.is_ok()
                    }
                    ChannelMsg::ExitSignal {
                        signal_name,
                        core_dumped,
                        error_message,
                        lang_tag,
                    } => server
                        .exit_signal_request(
                            client_id,
                            signal_name,
                            core_dumped,
                            error_message,
                            lang_tag,
                        )
                        .await
                        .is_ok(),
                    _ => true,
                };
                let queued = down_queued
                    .fetch_sub(n, Ordering::Relaxed)
                    .saturating_sub(n);
                backpressure.update(up_queued.load(Ordering::Relaxed), queued);
                moved.notify_waiters();
                if !sent {
                    return Down::ClientGone;
                }
            }
            Down::TargetClosed
        };
        tokio::pin!(up_read, up_write, down_read, down_write);
        let mut up_done = false;
        let mut down_read_done = false;
        loop {
            let idle_at =
                start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle_timeout;
            tokio::select! {
                () = &mut up_read => break TunnelCloseReason::Client,
                u = &mut up_write, if !up_done => {
                    up_done = true;
                    match u {
                        Up::ClientEof => {}
                        Up::TargetGone => break TunnelCloseReason::Target,
                    }
                }
                r = &mut down_read, if !down_read_done => {
                    down_read_done = true;
                    if r == DownRead::Overflow {
                        tracing::warn!(
                            queued = down_queued.load(Ordering::Relaxed),
                            "proxied channel closed: neither side reads"
                        );
                        break TunnelCloseReason::Target;
                    }
                }
                d = &mut down_write => break match d {
                    Down::TargetClosed => TunnelCloseReason::Target,
                    Down::ClientGone => TunnelCloseReason::Client,
                },
                reason = stopped(stop) => break reason,
                () = tokio::time::sleep_until(expires) => break TunnelCloseReason::Expired,
                () = tokio::time::sleep_until(idle_at) => {
                    let quiet = start
                        .elapsed()
                        .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                    if quiet >= idle_timeout {
                        break TunnelCloseReason::Idle;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, target_write.close()).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, client_write.close()).await;
    let exit_status = *exit_status.lock().unwrap_or_else(PoisonError::into_inner);
    RelayEnd {
        reason,
        exit_status,
        to_target: up_bytes.load(Ordering::Relaxed),
        to_client: down_bytes.load(Ordering::Relaxed),
    }
}
