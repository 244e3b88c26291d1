//! Copying bytes between a `direct-tcpip` channel and the target's TCP connection.
//!
//! ```text
//!  client ──CHANNEL_DATA──▶ russh queue (≤ 32 messages) ──▶ write_all ──▶ target
//!  client ◀──CHANNEL_DATA── ChannelTx (waits for window) ◀── read 32 KiB ◀── target
//! ```
//!
//! - **Bounded buffers.** Target to client: one 32 KiB read buffer, and `ChannelTx` sends no
//!   more than the client's SSH window allows (it waits for `WINDOW_ADJUST`). Client to target:
//!   russh queues at most `channel_buffer_size` (32) messages of at most 32 KiB per channel; while
//!   the target does not read, the queue fills and russh stops reading the connection, so the
//!   client's window is not replenished. (russh 0.65 grants window on receipt, not on
//!   consumption, so a stalled target holds the whole connection, not only its channel; an
//!   `ssh -J` connection carries one channel, so this is the same thing there.)
//! - **Half-close.** EOF from the client shuts down the TCP write side and keeps relaying the
//!   target's answer; EOF from the target sends `CHANNEL_EOF` and keeps relaying the client's
//!   data. The tunnel ends when both sides have sent EOF, when either side closes or fails, or
//!   when the session stops it (revoked, expired, idle, shutdown). The close reason is the side
//!   that finished first.
//! - **Counted.** Bytes each way go into `ssh.tunnel.close`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use sallyport_core::audit::TunnelCloseReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// Size of the target-to-client read buffer (one SSH packet).
const READ_BUFFER: usize = 32 * 1024;

/// How long closing the channel may take before the tunnel gives up on it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOutcome {
    /// Why.
    pub reason: TunnelCloseReason,
    /// Bytes from the client to the target.
    pub to_target: u64,
    /// Bytes from the target to the client.
    pub to_client: u64,
}

/// How the client-to-target direction ended.
#[derive(Debug, Clone, Copy)]
enum Up {
    /// The client sent EOF (the target's write side is shut down).
    ClientEof,
    /// The client closed the channel or its connection ended.
    ClientGone,
    /// Writing to the target failed.
    TargetGone,
}

/// How the target-to-client direction ended.
#[derive(Debug, Clone, Copy)]
enum Down {
    /// The target sent EOF (forwarded to the client).
    TargetEof,
    /// Reading from the target failed.
    TargetGone,
    /// Writing to the client failed (its connection ended).
    ClientGone,
}

/// Why the session asked a tunnel to stop; `None` until it does.
pub type StopSignal = watch::Receiver<Option<TunnelCloseReason>>;

/// Waits until the session asks the tunnel to stop, and says why. If the session is gone, the
/// client's connection is.
pub async fn stopped(stop: &mut StopSignal) -> TunnelCloseReason {
    loop {
        if let Some(reason) = *stop.borrow_and_update() {
            return reason;
        }
        if stop.changed().await.is_err() {
            return TunnelCloseReason::Client;
        }
    }
}

/// Relays until the tunnel ends; closes the channel and drops the TCP connection.
pub async fn relay(
    channel: Channel<Msg>,
    upstream: TcpStream,
    stop: &mut StopSignal,
    expires: Instant,
    idle_timeout: Duration,
) -> RelayOutcome {
    let (mut from_client, to_client_half) = channel.split();
    let (mut from_target, mut to_target) = upstream.into_split();
    let start = Instant::now();
    let bytes_up = AtomicU64::new(0);
    let bytes_down = AtomicU64::new(0);
    // Milliseconds since `start` of the last byte either way.
    let last = AtomicU64::new(0);
    let touch = || {
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    };

    let reason = {
        let up = async {
            loop {
                match from_client.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        if to_target.write_all(&data).await.is_err() {
                            return Up::TargetGone;
                        }
                        bytes_up.fetch_add(data.len() as u64, Ordering::Relaxed);
                        touch();
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = to_target.shutdown().await;
                        return Up::ClientEof;
                    }
                    Some(ChannelMsg::Close) | None => return Up::ClientGone,
                    // Window adjustments, extended data and requests carry nothing for the
                    // target.
                    Some(_) => {}
                }
            }
        };
        let down = async {
            let mut writer = to_client_half.make_writer();
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                let n = match from_target.read(&mut buf).await {
                    Ok(0) => {
                        let _ = writer.shutdown().await;
                        return Down::TargetEof;
                    }
                    Ok(n) => n,
                    Err(_) => return Down::TargetGone,
                };
                let Some(chunk) = buf.get(..n) else {
                    return Down::TargetGone;
                };
                if writer.write_all(chunk).await.is_err() {
                    return Down::ClientGone;
                }
                bytes_down.fetch_add(n as u64, Ordering::Relaxed);
                touch();
            }
        };
        tokio::pin!(up, down);
        let mut up_done: Option<Up> = None;
        let mut down_done: Option<Down> = None;
        let mut first: Option<TunnelCloseReason> = None;
        loop {
            let idle_at =
                start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle_timeout;
            tokio::select! {
                u = &mut up, if up_done.is_none() => {
                    up_done = Some(u);
                    first.get_or_insert(match u {
                        Up::ClientEof | Up::ClientGone => TunnelCloseReason::Client,
                        Up::TargetGone => TunnelCloseReason::Target,
                    });
                    if matches!(u, Up::ClientGone | Up::TargetGone) {
                        break first.unwrap_or(TunnelCloseReason::Client);
                    }
                }
                d = &mut down, if down_done.is_none() => {
                    down_done = Some(d);
                    first.get_or_insert(match d {
                        Down::TargetEof | Down::TargetGone => TunnelCloseReason::Target,
                        Down::ClientGone => TunnelCloseReason::Client,
                    });
                    if matches!(d, Down::TargetGone | Down::ClientGone) {
                        break first.unwrap_or(TunnelCloseReason::Target);
                    }
                }
                reason = stopped(stop) => break reason,
                () = tokio::time::sleep_until(expires) => break TunnelCloseReason::Expired,
                () = tokio::time::sleep_until(idle_at) => {
                    let quiet = start.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                    if quiet >= idle_timeout {
                        break TunnelCloseReason::Idle;
                    }
                }
            }
            if up_done.is_some() && down_done.is_some() {
                break first.unwrap_or(TunnelCloseReason::Client);
            }
        }
    };
    // Both copy futures are gone; the TCP halves drop here, which closes the connection to the
    // target. Tell the client the channel is closed (bounded: its connection may be stuck).
    drop(from_target);
    drop(to_target);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, to_client_half.close()).await;
    RelayOutcome {
        reason,
        to_target: bytes_up.load(Ordering::Relaxed),
        to_client: bytes_down.load(Ordering::Relaxed),
    }
}
