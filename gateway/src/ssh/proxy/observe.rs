//! What a proxied session channel shows to recorders and auditors.
use sallyport_core::model::{GrantId, Login, TargetName, UserName};
use std::net::SocketAddr;

/// Who and what a proxied session channel is.
#[derive(Clone, Debug)]
pub struct ChannelContext {
    /// The gateway's id for the SSH session (as in `ssh.session.start`).
    pub session_id: uuid::Uuid,
    /// The SSH channel number on the client side.
    pub channel: u32,
    pub user: UserName,
    pub target: TargetName,
    pub login: Login,
    pub grant: GrantId,
    pub source: SocketAddr,
}

/// Sees one proxied session channel, in order, on its relay task. Must not block: buffer and hand
/// work to a background task.
pub trait ChannelObserver: Send + 'static {
    fn pty(&mut self, _term: &str, _cols: u32, _rows: u32) {}
    fn resize(&mut self, _cols: u32, _rows: u32) {}
    fn shell(&mut self) {}
    fn exec(&mut self, _command: &[u8]) {}
    fn env(&mut self, _name: &str, _value: &str) {}
    fn subsystem(&mut self, _name: &str) {}
    /// Client → target bytes (keyboard input, SFTP requests).
    fn client_data(&mut self, _data: &[u8]) {}
    /// Target → client bytes on the main stream (terminal output, SFTP replies).
    fn target_data(&mut self, _data: &[u8]) {}
    /// Target → client extended data (stderr is 1).
    fn target_extended_data(&mut self, _code: u32, _data: &[u8]) {}
    fn exit_status(&mut self, _code: u32) {}
    /// The channel closed (always called once, last).
    fn closed(&mut self) {}
}

/// Makes the observers for each new proxied session channel.
pub trait ObserverFactory: Send + Sync + std::fmt::Debug + 'static {
    fn observers(&self, ctx: &ChannelContext) -> Vec<Box<dyn ChannelObserver>>;
}
