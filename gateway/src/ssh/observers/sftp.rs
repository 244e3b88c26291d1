//! `ssh.sftp.*`: what an `sftp` subsystem channel (also `scp`, which speaks SFTP since OpenSSH
//! 9) opened, wrote, removed, renamed and changed on a target.

use sallyport_core::audit::EventKind;
use sallyport_core::recording::sftp::{SftpOp, SftpTracker};

use super::audit_queue::AuditSender;
use crate::ssh::proxy::observe::{ChannelContext, ChannelObserver};

/// Audits one channel once it asks for the `sftp` subsystem.
#[derive(Debug)]
pub struct SftpAudit {
    audit: AuditSender,
    ctx: ChannelContext,
    /// Present while the channel is an SFTP channel.
    tracker: Option<SftpTracker>,
}

impl SftpAudit {
    /// An SFTP auditor for the channel `ctx`.
    pub fn new(audit: AuditSender, ctx: ChannelContext) -> Self {
        Self {
            audit,
            ctx,
            tracker: None,
        }
    }

    fn emit(&self, ops: Vec<SftpOp>) {
        for op in ops {
            self.audit.send(event_of(&self.ctx, op));
        }
    }
}

impl ChannelObserver for SftpAudit {
    fn subsystem(&mut self, name: &str) {
        if name == "sftp" && self.tracker.is_none() {
            self.tracker = Some(SftpTracker::new());
        }
    }

    fn client_data(&mut self, data: &[u8]) {
        if let Some(t) = &mut self.tracker {
            let ops = t.client(data);
            self.emit(ops);
        }
    }

    fn target_data(&mut self, data: &[u8]) {
        if let Some(t) = &mut self.tracker {
            let ops = t.server(data);
            self.emit(ops);
        }
    }

    fn closed(&mut self) {
        if let Some(mut t) = self.tracker.take() {
            let ops = t.finish();
            self.emit(ops);
        }
    }
}

/// The audit event of one SFTP operation on the channel `ctx`.
pub fn event_of(ctx: &ChannelContext, op: SftpOp) -> EventKind {
    let user = ctx.user.clone();
    let channel = u64::from(ctx.channel);
    let target = ctx.target.clone();
    let login = ctx.login.clone();
    let change = |operation: &str, path: Option<String>, detail: String, outcome: String| {
        EventKind::SshSftpChange {
            user: user.clone(),
            channel,
            target: target.clone(),
            login: login.clone(),
            operation: operation.to_owned(),
            path,
            detail,
            outcome,
        }
    };
    match op {
        SftpOp::Open {
            path,
            flags,
            outcome,
        } => EventKind::SshSftpOpen {
            user,
            channel,
            target,
            login,
            path,
            flags: flags.names().into_iter().map(str::to_owned).collect(),
            outcome: outcome.as_str(),
        },
        SftpOp::Write {
            path,
            bytes,
            writes,
        } => EventKind::SshSftpWrite {
            user,
            channel,
            target,
            login,
            path,
            bytes,
            writes,
        },
        SftpOp::Remove { path, outcome } => EventKind::SshSftpRemove {
            user,
            channel,
            target,
            login,
            path,
            outcome: outcome.as_str(),
        },
        SftpOp::Rename { from, to, outcome } => EventKind::SshSftpRename {
            user,
            channel,
            target,
            login,
            from,
            to,
            outcome: outcome.as_str(),
        },
        SftpOp::Mkdir { path, outcome } => {
            change("mkdir", Some(path), String::new(), outcome.as_str())
        }
        SftpOp::Rmdir { path, outcome } => {
            change("rmdir", Some(path), String::new(), outcome.as_str())
        }
        SftpOp::SetStat {
            path,
            changes,
            outcome,
        } => change("setstat", path, changes, outcome.as_str()),
        SftpOp::Symlink {
            link,
            target: points_to,
            outcome,
        } => change("symlink", Some(link), points_to, outcome.as_str()),
        SftpOp::Unparsable { stream, why } => EventKind::SshSftpUnparsable {
            user,
            channel,
            target,
            stream: stream.to_owned(),
            why,
        },
    }
}
