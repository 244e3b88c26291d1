//! A russh client for the in-process suites: one connection to an [`SshService`] over an
//! in-memory pipe, a local echo server as the target.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, DisconnectReason};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use sallyport_gateway::ssh::{SshService, SshSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Lab;

/// The client side: checks the host key, remembers the disconnect message.
pub struct Client {
    host_key: PublicKey,
    disconnect: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(matches!(key, PublicKeyOrCertificate::PublicKey { key, .. } if *key == self.host_key))
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        if let DisconnectReason::ReceivedDisconnect(info) = reason {
            *self.disconnect.lock().unwrap() = Some(info.message);
        }
        Ok(())
    }
}

pub struct Conn {
    pub handle: client::Handle<Client>,
    disconnect: Arc<Mutex<Option<String>>>,
    server: tokio::task::JoinHandle<()>,
}

pub const PEER: &str = "192.0.2.10:40000";

/// One connection to `svc` over an in-memory pipe, from `peer`.
pub async fn connect(lab: &Lab, svc: &Arc<SshService>, peer: &str) -> Conn {
    let (client_io, server_io) = tokio::io::duplex(256 * 1024);
    let svc = Arc::clone(svc);
    let peer: SocketAddr = peer.parse().unwrap();
    let server = tokio::spawn(async move { svc.serve(server_io, peer).await });
    let disconnect = Arc::new(Mutex::new(None));
    let handler = Client {
        host_key: lab.gw.gateway().secrets().ssh_host_public_key(),
        disconnect: Arc::clone(&disconnect),
    };
    let handle = client::connect_stream(Arc::new(client::Config::default()), client_io, handler)
        .await
        .unwrap();
    Conn {
        handle,
        disconnect,
        server,
    }
}

impl Conn {
    pub async fn login(&mut self, user: &str, key: &PrivateKey) -> AuthResult {
        let key = PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None);
        self.handle.authenticate_publickey(user, key).await.unwrap()
    }

    /// Waits for the server to end the connection; returns its disconnect message.
    pub async fn ended(self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.server)
            .await
            .expect("the server did not end the connection in time")
            .unwrap();
        let message = self.disconnect.lock().unwrap().clone();
        message
    }
}

/// A TCP echo server on 127.0.0.1; returns its port.
pub async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

pub fn service(lab: &Lab, settings: SshSettings) -> (Arc<SshService>, watch::Sender<bool>) {
    let (stop, stop_rx) = watch::channel(false);
    let svc = SshService::new(
        Arc::clone(lab.control()),
        lab.gw.gateway().secrets(),
        settings,
        stop_rx,
    );
    (svc, stop)
}

/// Sends `data`, EOF, and reads everything back.
pub async fn round_trip(channel: russh::Channel<client::Msg>, data: &[u8]) -> Vec<u8> {
    let mut stream = channel.into_stream();
    stream.write_all(data).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}
