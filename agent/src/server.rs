//! The Unix-socket driver around the pure core: accept, check the peer's uid, run one task per
//! connection (frame → [`proto::parse_request`] → [`Keystore`] → [`Reply`]), and one task that
//! removes identities at their expiry.
//!
//! ```text
//!   accept ─▶ peer uid == ours or root? ─no─▶ close
//!              │ yes (≤ MAX_CONNECTIONS at once)
//!              ▼
//!   loop { read u32 len (≤ 256 KiB, else close) ─▶ read body ─▶ handle ─▶ write reply }
//!   expiry task: sleep until Keystore::next_expiry, or until an add/generate wakes it
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::HashAlg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, Notify, Semaphore};
use tracing::{debug, info, warn, Instrument};
use zeroize::Zeroizing;

use crate::constraints::Bindings;
use crate::keystore::Keystore;
use crate::proto::{self, Reply, Request};

/// Most client connections served at once; more wait in the accept backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// The keystore shared by every connection, and a wake-up for the expiry task.
#[derive(Debug, Default)]
pub struct Agent {
    store: Mutex<Keystore>,
    changed: Notify,
}

impl Agent {
    /// An agent with no identities.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Drops (and so zeroizes) every identity; used at shutdown.
    pub async fn clear(&self) {
        self.store.lock().await.clear();
    }

    /// Number of identities held (for tests and logs).
    pub async fn len(&self) -> usize {
        self.store.lock().await.len()
    }

    /// Whether no identity is held.
    pub async fn is_empty(&self) -> bool {
        self.store.lock().await.is_empty()
    }
}

/// Seconds since the Unix epoch (certificate validity is in wall-clock time).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Serves `listener` until `shutdown` completes. `allowed_uid` is the uid whose processes
/// (and root's) may connect.
pub async fn serve(
    listener: UnixListener,
    agent: Arc<Agent>,
    allowed_uid: u32,
    shutdown: impl Future<Output = ()>,
) {
    let expiry = tokio::spawn(expire_loop(agent.clone()));
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                warn!(cause = %err, "accept failed");
                continue;
            }
        };
        let uid = match stream.peer_cred() {
            Ok(cred) => cred.uid(),
            Err(err) => {
                warn!(cause = %err, "cannot read peer credentials; closing");
                continue;
            }
        };
        if uid != allowed_uid && uid != 0 {
            warn!(peer_uid = uid, "refused a connection from another user");
            continue;
        }
        let agent = agent.clone();
        let span = tracing::info_span!("conn", peer_uid = uid);
        tokio::spawn(
            async move {
                if let Err(err) = serve_connection(stream, &agent).await {
                    debug!(cause = %err, "connection closed");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
    expiry.abort();
}

/// Removes identities at their expiry; woken early whenever one is added.
async fn expire_loop(agent: Arc<Agent>) {
    loop {
        let next = {
            let mut store = agent.store.lock().await;
            let removed = store.remove_expired(Instant::now());
            if removed > 0 {
                info!(removed, "expired identities removed and zeroized");
            }
            store.next_expiry()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    _ = agent.changed.notified() => {}
                }
            }
            None => agent.changed.notified().await,
        }
    }
}

/// Serves one connection until the peer closes it or sends a bad frame.
pub async fn serve_connection<S>(mut stream: S, agent: &Agent) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bindings = Bindings::default();
    loop {
        let len = match stream.read_u32().await {
            Ok(len) => len,
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        };
        let len = proto::body_len(len)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        // The body may hold a private key (add identity) or a passphrase: zeroize it.
        let mut body = Zeroizing::new(vec![0u8; len]);
        stream.read_exact(&mut body).await?;
        let reply = handle(&body, agent, &mut bindings).await;
        stream.write_all(&proto::frame(&reply.encode())).await?;
    }
}

/// Parses and answers one message.
pub async fn handle(body: &[u8], agent: &Agent, bindings: &mut Bindings) -> Reply {
    let request = match proto::parse_request(body) {
        Ok(r) => r,
        Err(err) => {
            debug!(cause = %err, "refused request");
            return Reply::Failure;
        }
    };
    let name = request.name();
    let now = Instant::now();
    let now_unix = unix_now();
    let mut store = agent.store.lock().await;
    store.remove_expired(now);
    let result = match request {
        Request::RequestIdentities => {
            return Reply::Identities(store.list(bindings.as_slice(), now, now_unix));
        }
        Request::Sign { key, data, flags } => store
            .sign(&key, &data, flags, bindings.as_slice(), now, now_unix)
            .map(Reply::Signature),
        Request::AddIdentity { key, constraints } => {
            let fingerprint = KeyData::try_from(&key.keypair)
                .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
                .unwrap_or_default();
            let lifetime = constraints.lifetime_secs;
            let restricted = !constraints.destinations.is_empty();
            let r = store.add(*key, constraints, bindings.as_slice(), now, now_unix);
            if r.is_ok() {
                info!(%fingerprint, ?lifetime, restricted, "identity added");
                agent.changed.notify_one();
            }
            r.map(|()| Reply::Success)
        }
        Request::RemoveIdentity { key } => store
            .remove(&key, bindings.as_slice(), now_unix)
            .map(|()| Reply::Success),
        Request::RemoveAllIdentities => store.remove_all().map(|()| Reply::Success),
        Request::Lock { passphrase } => store.lock(&passphrase).map(|()| Reply::Success),
        Request::Unlock { passphrase } => match store.unlock(&passphrase) {
            Ok(()) => Ok(Reply::Success),
            Err((err, delay)) => {
                drop(store);
                warn!("wrong unlock passphrase");
                tokio::time::sleep(delay).await;
                return reply_for(name, Err(err));
            }
        },
        Request::SessionBind(bind) => {
            if store.is_locked() {
                Err(crate::error::KeystoreError::Locked)
            } else {
                bindings.bind(&bind).map(|()| Reply::Success)
            }
        }
        Request::GenerateEd25519 {
            comment,
            lifetime_secs,
        } => {
            let r = store.generate_ed25519(comment, lifetime_secs, now);
            if let Ok(key) = &r {
                info!(fingerprint = %key.fingerprint(HashAlg::Sha256), lifetime_secs, "ed25519 key generated");
                agent.changed.notify_one();
            }
            r.and_then(|k| {
                use russh::keys::ssh_encoding::Encode;
                k.encode_vec()
                    .map(Reply::SuccessWithBlob)
                    .map_err(|_| crate::error::KeystoreError::Signing)
            })
        }
        Request::AddCertificate(cert) => {
            let key_id = cert.key_id().to_owned();
            let r = store.add_certificate(*cert, now, now_unix);
            if r.is_ok() {
                info!(%key_id, "certificate attached");
                agent.changed.notify_one();
            }
            r.map(|()| Reply::Success)
        }
    };
    reply_for(name, result)
}

fn reply_for(name: &str, result: Result<Reply, crate::error::KeystoreError>) -> Reply {
    match result {
        Ok(reply) => reply,
        Err(err) => {
            debug!(request = name, cause = %err, "refused");
            Reply::Failure
        }
    }
}

/// Connects to `path` to tell a live agent from a stale socket file.
pub async fn is_live_socket(path: &std::path::Path) -> bool {
    UnixStream::connect(path).await.is_ok()
}
