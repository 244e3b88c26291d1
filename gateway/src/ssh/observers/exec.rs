//! `ssh.exec`: every command run on a target through proxy mode, with its command line.

use sallyport_core::audit::EventKind;

use super::audit_queue::AuditSender;
use super::recorder::shown_command;
use crate::ssh::proxy::observe::{ChannelContext, ChannelObserver};

/// Journals the `exec` request of one channel.
#[derive(Debug)]
pub struct ExecAudit {
    audit: AuditSender,
    ctx: ChannelContext,
}

impl ExecAudit {
    /// An exec auditor for the channel `ctx`.
    pub fn new(audit: AuditSender, ctx: ChannelContext) -> Self {
        Self { audit, ctx }
    }
}

impl ChannelObserver for ExecAudit {
    fn exec(&mut self, command: &[u8]) {
        self.audit.send(EventKind::SshExec {
            user: self.ctx.user.clone(),
            channel: u64::from(self.ctx.channel),
            target: self.ctx.target.clone(),
            login: self.ctx.login.clone(),
            grant: self.ctx.grant,
            command: shown_command(command),
        });
    }
}
