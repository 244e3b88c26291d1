//! A proxied session channel before the target is ready: the client's requests up to the one
//! that starts something (shell, command, subsystem) are collected, to be replayed on the
//! target's channel once the onward login is done. While that runs, the client channel keeps
//! being read (russh's queue must not fill, or the agent channel on the same connection would
//! stall, and russh grants the client window on receipt, so nothing else slows the client
//! down): data is held, up to [`MAX_PENDING`] bytes; a client that sends more before the target
//! is ready is refused ([`Interrupted::Overflow`]).
//!
//! Every request was already answered with success by the session task (an answer that waited
//! for the target would hold russh's connection loop, which the agent channel needs).

use std::future::Future;

use russh::{ChannelMsg, ChannelReadHalf, Pty};

use super::relay::Observers;

/// Client data held while the target is not ready; past it the channel is refused.
pub const MAX_PENDING: usize = 64 * 1024 * 1024;

/// The terminal asked for.
#[derive(Debug, Clone)]
pub struct PtyRequest {
    /// `TERM`.
    pub term: String,
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
    /// Width in pixels.
    pub pix_width: u32,
    /// Height in pixels.
    pub pix_height: u32,
    /// Terminal modes.
    pub modes: Vec<(Pty, u32)>,
}

/// What starts the session on the target.
#[derive(Debug, Clone)]
pub enum Start {
    /// A login shell.
    Shell,
    /// A command.
    Exec(Vec<u8>),
    /// A subsystem (`sftp`).
    Subsystem(String),
}

impl Start {
    /// What it is, for messages.
    pub fn what(&self) -> &'static str {
        match self {
            Start::Shell => "shell",
            Start::Exec(_) => "command",
            Start::Subsystem(_) => "subsystem",
        }
    }
}

/// Everything the client asked for before the target was ready.
#[derive(Debug, Default)]
pub struct Setup {
    /// The client forwarded its agent (`auth-agent-req@openssh.com`).
    pub agent: bool,
    /// A terminal.
    pub pty: Option<PtyRequest>,
    /// Environment variables that passed the allow-list.
    pub env: Vec<(String, String)>,
    /// What to start.
    pub start: Option<Start>,
    /// Client data held for the target.
    pub pending: Vec<Vec<u8>>,
    /// Its size.
    pub pending_len: usize,
    /// The client sent EOF.
    pub eof: bool,
}

/// Why the setup stopped.
#[derive(Debug, Clone, Copy)]
pub enum Interrupted {
    /// The client closed the channel (or its connection ended).
    ClientGone,
    /// The client sent more than [`MAX_PENDING`] bytes before the target was ready.
    Overflow,
}

/// Whether `name` is on the allow-list (a trailing `*` matches a prefix).
pub fn env_allowed(allow: &[String], name: &str) -> bool {
    allow.iter().any(|pattern| match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    })
}

impl Setup {
    /// Takes one client message; `Err` if the client is gone.
    fn take(
        &mut self,
        msg: Option<ChannelMsg>,
        allow_env: &[String],
        observers: &Observers,
    ) -> Result<(), Interrupted> {
        match msg {
            None | Some(ChannelMsg::Close) => return Err(Interrupted::ClientGone),
            Some(ChannelMsg::AgentForward { .. }) => self.agent = true,
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            }) => {
                observers.each(|o| o.pty(&term, col_width, row_height));
                self.pty = Some(PtyRequest {
                    term,
                    cols: col_width,
                    rows: row_height,
                    pix_width,
                    pix_height,
                    modes: terminal_modes,
                });
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            }) => {
                observers.each(|o| o.resize(col_width, row_height));
                if let Some(pty) = &mut self.pty {
                    pty.cols = col_width;
                    pty.rows = row_height;
                    pty.pix_width = pix_width;
                    pty.pix_height = pix_height;
                }
            }
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) => {
                if env_allowed(allow_env, &variable_name) && self.env.len() < 64 {
                    observers.each(|o| o.env(&variable_name, &variable_value));
                    self.env.push((variable_name, variable_value));
                }
            }
            Some(ChannelMsg::RequestShell { .. }) if self.start.is_none() => {
                observers.each(|o| o.shell());
                self.start = Some(Start::Shell);
            }
            Some(ChannelMsg::Exec { command, .. }) if self.start.is_none() => {
                observers.each(|o| o.exec(&command));
                self.start = Some(Start::Exec(command));
            }
            Some(ChannelMsg::RequestSubsystem { name, .. }) if self.start.is_none() => {
                observers.each(|o| o.subsystem(&name));
                self.start = Some(Start::Subsystem(name));
            }
            Some(ChannelMsg::Data { data }) => {
                self.pending_len += data.len();
                if self.pending_len > MAX_PENDING {
                    return Err(Interrupted::Overflow);
                }
                self.pending.push(data.to_vec());
            }
            Some(ChannelMsg::Eof) => self.eof = true,
            // X11 was refused; signals before the start have nothing to reach.
            Some(_) => {}
        }
        Ok(())
    }

    /// Reads the client's requests until one starts something.
    pub async fn collect(
        read: &mut ChannelReadHalf,
        allow_env: &[String],
        observers: &Observers,
    ) -> Result<Setup, Interrupted> {
        let mut setup = Setup::default();
        while setup.start.is_none() {
            let msg = read.wait().await;
            setup.take(msg, allow_env, observers)?;
        }
        Ok(setup)
    }

    /// Runs `work` while still reading the client (data held, up to [`MAX_PENDING`]; requests
    /// after the start are taken as they come).
    pub async fn while_reading<F: Future>(
        &mut self,
        read: &mut ChannelReadHalf,
        allow_env: &[String],
        observers: &Observers,
        work: F,
    ) -> Result<F::Output, Interrupted> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                msg = read.wait() => self.take(msg, allow_env, observers)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_allow_list() {
        let allow = vec!["LANG".to_owned(), "LC_*".to_owned()];
        assert!(env_allowed(&allow, "LANG"));
        assert!(env_allowed(&allow, "LC_ALL"));
        assert!(!env_allowed(&allow, "LANGUAGE"));
        assert!(!env_allowed(&allow, "LD_PRELOAD"));
        assert!(!env_allowed(&[], "LANG"));
    }
}
