//! What an SFTP session changed, from both byte streams of its channel: the client's requests
//! (paths, flags, handles, write sizes) and the server's replies (which handle an `OPEN` got,
//! and whether each request succeeded).
//!
//! ```text
//!  client: OPEN id=7 "/etc/motd" WRITE|CREAT ─┐   pending[7] = Open
//!  server: HANDLE id=7 h="\0\0\0\1"       ────┼─▶ SftpOp::Open{ok}; handles[h] = "/etc/motd"
//!  client: WRITE h off=0 len=32768  (×n)  ────┤   handles[h].bytes += len
//!  client: CLOSE h                        ────┴─▶ SftpOp::Write{"/etc/motd", bytes, writes}
//! ```
//!
//! Writes are aggregated per handle (one [`SftpOp::Write`] when the handle is closed, or at the
//! end), not one operation per `WRITE` packet. Every table is bounded: past the bounds an
//! operation is reported at once with an [`Outcome::Unknown`] result, and writes to handles
//! that cannot be tracked are summed under an unknown path. Bytes that are not SFTP stop the
//! tracking of that stream and yield one [`SftpOp::Unparsable`].

use std::collections::HashMap;

use super::sftp_wire::{kind, Desync, Framer, Packet, Reader};

/// Requests awaiting a reply, at most.
pub const MAX_PENDING: usize = 4096;
/// Open handles tracked, at most.
pub const MAX_HANDLES: usize = 1024;

/// `SSH_FXF_*` open flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags(pub u32);

impl OpenFlags {
    /// `SSH_FXF_READ`.
    pub const READ: u32 = 0x01;
    /// `SSH_FXF_WRITE`.
    pub const WRITE: u32 = 0x02;
    /// `SSH_FXF_APPEND`.
    pub const APPEND: u32 = 0x04;
    /// `SSH_FXF_CREAT`.
    pub const CREATE: u32 = 0x08;
    /// `SSH_FXF_TRUNC`.
    pub const TRUNCATE: u32 = 0x10;
    /// `SSH_FXF_EXCL`.
    pub const EXCLUSIVE: u32 = 0x20;

    /// Whether the open may change the file.
    pub fn modifies(self) -> bool {
        self.0 & (Self::WRITE | Self::APPEND | Self::CREATE | Self::TRUNCATE) != 0
    }

    /// The flags' names: `read`, `write`, `append`, `create`, `truncate`, `exclusive`.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::APPEND, "append"),
            (Self::CREATE, "create"),
            (Self::TRUNCATE, "truncate"),
            (Self::EXCLUSIVE, "exclusive"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// How the server answered a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success (`SSH_FX_OK`, or a handle).
    Ok,
    /// An `SSH_FX_*` error status.
    Failed(u32),
    /// No answer was seen (the channel closed first, or it could not be tracked).
    Unknown,
}

impl Outcome {
    /// The outcome's name in audit records: `ok`, `no-such-file`, `permission-denied`,
    /// `failure`, `eof`, `bad-message`, `unsupported`, `error-N`, or `unknown`.
    pub fn as_str(self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Unknown => "unknown".into(),
            Outcome::Failed(code) => match code {
                1 => "eof".into(),
                2 => "no-such-file".into(),
                3 => "permission-denied".into(),
                4 => "failure".into(),
                5 => "bad-message".into(),
                6 => "no-connection".into(),
                7 => "connection-lost".into(),
                8 => "unsupported".into(),
                n => format!("error-{n}"),
            },
        }
    }
}

/// One thing an SFTP session did (or tried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SftpOp {
    /// A file opened.
    Open {
        /// The path as sent.
        path: String,
        /// How.
        flags: OpenFlags,
        /// The answer.
        outcome: Outcome,
    },
    /// Bytes written through one handle, from its open to its close.
    Write {
        /// The path it was opened with (`None` if the open was not seen).
        path: Option<String>,
        /// Bytes written.
        bytes: u64,
        /// `WRITE` requests.
        writes: u64,
    },
    /// A file removed.
    Remove {
        /// The path.
        path: String,
        /// The answer.
        outcome: Outcome,
    },
    /// A file or directory renamed (`RENAME` or `posix-rename@openssh.com`).
    Rename {
        /// Old path.
        from: String,
        /// New path.
        to: String,
        /// The answer.
        outcome: Outcome,
    },
    /// A directory created.
    Mkdir {
        /// The path.
        path: String,
        /// The answer.
        outcome: Outcome,
    },
    /// A directory removed.
    Rmdir {
        /// The path.
        path: String,
        /// The answer.
        outcome: Outcome,
    },
    /// Attributes set (`SETSTAT`, `FSETSTAT`, `lsetstat@openssh.com`).
    SetStat {
        /// The path (for `FSETSTAT`, the handle's; `None` if unknown).
        path: Option<String>,
        /// What changed, e.g. `mode=0755 uid=0 gid=0`.
        changes: String,
        /// The answer.
        outcome: Outcome,
    },
    /// A symbolic link created.
    Symlink {
        /// The link's path.
        link: String,
        /// What it points to.
        target: String,
        /// The answer.
        outcome: Outcome,
    },
    /// A stream was not SFTP; it is not tracked further.
    Unparsable {
        /// `client` or `server`.
        stream: &'static str,
        /// Why.
        why: String,
    },
}

/// A request waiting for its reply.
#[derive(Clone, Debug)]
enum Pending {
    Open {
        path: String,
        flags: OpenFlags,
    },
    Remove(String),
    Rename {
        from: String,
        to: String,
    },
    Mkdir(String),
    Rmdir(String),
    SetStat {
        path: Option<String>,
        changes: String,
    },
    Symlink {
        link: String,
        target: String,
    },
}

impl Pending {
    fn into_op(self, outcome: Outcome) -> SftpOp {
        match self {
            Pending::Open { path, flags } => SftpOp::Open {
                path,
                flags,
                outcome,
            },
            Pending::Remove(path) => SftpOp::Remove { path, outcome },
            Pending::Rename { from, to } => SftpOp::Rename { from, to, outcome },
            Pending::Mkdir(path) => SftpOp::Mkdir { path, outcome },
            Pending::Rmdir(path) => SftpOp::Rmdir { path, outcome },
            Pending::SetStat { path, changes } => SftpOp::SetStat {
                path,
                changes,
                outcome,
            },
            Pending::Symlink { link, target } => SftpOp::Symlink {
                link,
                target,
                outcome,
            },
        }
    }
}

/// Writes through one handle so far.
#[derive(Clone, Debug, Default)]
struct HandleUse {
    path: Option<String>,
    bytes: u64,
    writes: u64,
}

/// Tracks one SFTP channel. Feed it both directions in the order they were relayed.
#[derive(Debug, Default)]
pub struct SftpTracker {
    client: Framer,
    server: Framer,
    client_reported: bool,
    server_reported: bool,
    pending: HashMap<u32, Pending>,
    handles: HashMap<Vec<u8>, HandleUse>,
    /// Writes to handles that could not be tracked.
    untracked: HandleUse,
    ops: Vec<SftpOp>,
}

impl SftpTracker {
    /// A tracker for a new channel.
    pub fn new() -> Self {
        Self::default()
    }

    /// Client → server bytes; returns the operations they complete.
    pub fn client(&mut self, data: &[u8]) -> Vec<SftpOp> {
        let mut packets = Vec::new();
        self.client.feed(data, |p| packets.push(p));
        for p in packets {
            self.request(&p);
        }
        if let (Some(d), false) = (self.client.stopped(), self.client_reported) {
            self.client_reported = true;
            self.ops.push(unparsable("client", d));
        }
        std::mem::take(&mut self.ops)
    }

    /// Server → client bytes; returns the operations they complete.
    pub fn server(&mut self, data: &[u8]) -> Vec<SftpOp> {
        let mut packets = Vec::new();
        self.server.feed(data, |p| packets.push(p));
        for p in packets {
            self.reply(&p);
        }
        if let (Some(d), false) = (self.server.stopped(), self.server_reported) {
            self.server_reported = true;
            self.ops.push(unparsable("server", d));
            // Nothing will be answered now: report what waits.
            let pending: Vec<_> = self.pending.drain().collect();
            for (_, p) in sorted(pending) {
                self.ops.push(p.into_op(Outcome::Unknown));
            }
        }
        std::mem::take(&mut self.ops)
    }

    /// The channel closed: what waited for a reply, and the writes of handles still open.
    pub fn finish(&mut self) -> Vec<SftpOp> {
        let pending: Vec<_> = self.pending.drain().collect();
        for (_, p) in sorted(pending) {
            self.ops.push(p.into_op(Outcome::Unknown));
        }
        let mut open: Vec<_> = self.handles.drain().map(|(_, u)| u).collect();
        open.sort_by(|a, b| a.path.cmp(&b.path));
        open.push(std::mem::take(&mut self.untracked));
        for u in open {
            if u.writes > 0 {
                self.ops.push(SftpOp::Write {
                    path: u.path,
                    bytes: u.bytes,
                    writes: u.writes,
                });
            }
        }
        std::mem::take(&mut self.ops)
    }

    fn request(&mut self, p: &Packet) {
        let mut r = Reader::new(&p.body);
        let Some(id) = r.u32() else {
            return;
        };
        let pending = match p.kind {
            kind::OPEN => {
                let Some(path) = r.path() else { return };
                let flags = OpenFlags(r.u32().unwrap_or(0));
                Pending::Open { path, flags }
            }
            kind::WRITE => {
                self.write(&mut r, p);
                return;
            }
            kind::CLOSE => {
                if let Some(h) = r.bytes() {
                    if let Some(u) = self.handles.remove(h) {
                        if u.writes > 0 {
                            self.ops.push(SftpOp::Write {
                                path: u.path,
                                bytes: u.bytes,
                                writes: u.writes,
                            });
                        }
                    }
                }
                return;
            }
            kind::REMOVE => match r.path() {
                Some(path) => Pending::Remove(path),
                None => return,
            },
            kind::MKDIR => match r.path() {
                Some(path) => Pending::Mkdir(path),
                None => return,
            },
            kind::RMDIR => match r.path() {
                Some(path) => Pending::Rmdir(path),
                None => return,
            },
            kind::RENAME => match (r.path(), r.path()) {
                (Some(from), Some(to)) => Pending::Rename { from, to },
                _ => return,
            },
            // OpenSSH sends SYMLINK's two paths swapped from the draft: target, then link.
            kind::SYMLINK => match (r.path(), r.path()) {
                (Some(target), Some(link)) => Pending::Symlink { link, target },
                _ => return,
            },
            kind::SETSTAT => match r.path() {
                Some(path) => Pending::SetStat {
                    path: Some(path),
                    changes: attrs(&mut r),
                },
                None => return,
            },
            kind::FSETSTAT => match r.bytes() {
                Some(h) => Pending::SetStat {
                    path: self.handles.get(h).and_then(|u| u.path.clone()),
                    changes: attrs(&mut r),
                },
                None => return,
            },
            kind::EXTENDED => match r.bytes() {
                Some(b"posix-rename@openssh.com") => match (r.path(), r.path()) {
                    (Some(from), Some(to)) => Pending::Rename { from, to },
                    _ => return,
                },
                Some(b"lsetstat@openssh.com") => match r.path() {
                    Some(path) => Pending::SetStat {
                        path: Some(path),
                        changes: attrs(&mut r),
                    },
                    None => return,
                },
                _ => return,
            },
            _ => return,
        };
        if self.server.stopped().is_some() || self.pending.len() >= MAX_PENDING {
            self.ops.push(pending.into_op(Outcome::Unknown));
        } else if let Some(old) = self.pending.insert(id, pending) {
            // A client reusing an id that is still in flight: report the first one now.
            self.ops.push(old.into_op(Outcome::Unknown));
        }
    }

    fn write(&mut self, r: &mut Reader<'_>, p: &Packet) {
        let Some(handle) = r.bytes() else { return };
        let Some(_offset) = r.u64() else { return };
        let Some(len) = r.u32() else { return };
        // The data string ends the packet: its declared length must match what is left of
        // the body, else count what the body holds.
        let declared = u64::from(len);
        let header = (4 + 4 + handle.len() + 8 + 4) as u64;
        let bytes = declared.min(u64::from(p.body_len).saturating_sub(header));
        let tracked = self.handles.contains_key(handle) || self.handles.len() < MAX_HANDLES;
        let entry = if tracked {
            self.handles.entry(handle.to_vec()).or_default()
        } else {
            &mut self.untracked
        };
        entry.bytes = entry.bytes.saturating_add(bytes);
        entry.writes = entry.writes.saturating_add(1);
    }

    fn reply(&mut self, p: &Packet) {
        let mut r = Reader::new(&p.body);
        let Some(id) = r.u32() else { return };
        match p.kind {
            kind::HANDLE => {
                let Some(pending) = self.pending.remove(&id) else {
                    return;
                };
                if let (Pending::Open { path, .. }, Some(h)) = (&pending, r.bytes()) {
                    if self.handles.contains_key(h) || self.handles.len() < MAX_HANDLES {
                        self.handles.entry(h.to_vec()).or_default().path = Some(path.clone());
                    }
                }
                self.ops.push(pending.into_op(Outcome::Ok));
            }
            kind::STATUS => {
                let Some(pending) = self.pending.remove(&id) else {
                    return;
                };
                let outcome = match r.u32() {
                    Some(0) => Outcome::Ok,
                    Some(code) => Outcome::Failed(code),
                    None => Outcome::Unknown,
                };
                self.ops.push(pending.into_op(outcome));
            }
            _ => {}
        }
    }
}

fn unparsable(stream: &'static str, d: Desync) -> SftpOp {
    let why = match d {
        Desync::EmptyPacket => "a packet of length 0".to_owned(),
        Desync::Oversize(n) => format!("a packet length of {n} bytes (over 256 KiB)"),
    };
    SftpOp::Unparsable { stream, why }
}

fn sorted(mut v: Vec<(u32, Pending)>) -> Vec<(u32, Pending)> {
    v.sort_by_key(|(id, _)| *id);
    v
}

/// The `ATTRS` of a set-stat, as `size=N uid=N gid=N mode=0NNN atime=N mtime=N`.
fn attrs(r: &mut Reader<'_>) -> String {
    const SIZE: u32 = 0x1;
    const UIDGID: u32 = 0x2;
    const PERMISSIONS: u32 = 0x4;
    const ACMODTIME: u32 = 0x8;
    let Some(flags) = r.u32() else {
        return String::new();
    };
    let mut parts = Vec::new();
    if flags & SIZE != 0 {
        if let Some(size) = r.u64() {
            parts.push(format!("size={size}"));
        }
    }
    if flags & UIDGID != 0 {
        if let (Some(uid), Some(gid)) = (r.u32(), r.u32()) {
            parts.push(format!("uid={uid} gid={gid}"));
        }
    }
    if flags & PERMISSIONS != 0 {
        if let Some(mode) = r.u32() {
            parts.push(format!("mode={:04o}", mode & 0o7777));
        }
    }
    if flags & ACMODTIME != 0 {
        if let (Some(atime), Some(mtime)) = (r.u32(), r.u32()) {
            parts.push(format!("atime={atime} mtime={mtime}"));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
#[path = "sftp_tests.rs"]
mod tests;
