//! The recorder: a shell or exec channel's terminal output (and input, if configured) to the
//! recording writer. SFTP and other subsystems are not recorded (they are audited instead).

use std::time::Instant;

use sallyport_core::recording::asciicast::{Header, DEFAULT_HEIGHT, DEFAULT_WIDTH};

use super::ObserverDeps;
use crate::ssh::proxy::observe::{ChannelContext, ChannelObserver};
use crate::ssh::recording::handle::RecordingHandle;
use crate::ssh::recording::writer::{self, RecordingSpec, WriterDeps};

/// Longest command kept in a recording's header.
const MAX_COMMAND: usize = 4096;

/// Where the recorder is.
#[derive(Debug)]
enum State {
    /// Nothing started yet; the terminal, if one was asked for.
    Waiting { pty: Option<(String, u32, u32)> },
    /// Recording since `started`.
    Recording {
        started: Instant,
        handle: RecordingHandle,
    },
    /// Not a recorded channel (a subsystem), or closed.
    Off,
}

/// Records one session channel.
#[derive(Debug)]
pub struct Recorder {
    deps: ObserverDeps,
    ctx: ChannelContext,
    state: State,
}

impl Recorder {
    /// A recorder for the channel `ctx`.
    pub fn new(deps: ObserverDeps, ctx: ChannelContext) -> Self {
        Self {
            deps,
            ctx,
            state: State::Waiting { pty: None },
        }
    }

    fn start(&mut self, command: Option<String>) {
        let State::Waiting { pty } = std::mem::replace(&mut self.state, State::Off) else {
            return;
        };
        let (term, width, height) = match pty {
            Some((term, cols, rows)) => (Some(term), cols, rows),
            None => (None, DEFAULT_WIDTH, DEFAULT_HEIGHT),
        };
        let now = sallyport_core::time::Timestamp::now().as_millis() / 1000;
        let mut header = Header::new(width, height, now);
        header.env.term = term;
        header.title = Some(format!(
            "{}: {}@{} (session {}, channel {})",
            self.ctx.user, self.ctx.login, self.ctx.target, self.ctx.session_id, self.ctx.channel
        ));
        let kind = if command.is_some() { "exec" } else { "shell" };
        header.command = command;
        let spec = RecordingSpec {
            header,
            kind,
            input: self.deps.settings.input,
            max_bytes: self.deps.settings.max_bytes(),
        };
        let deps = WriterDeps {
            control: std::sync::Arc::clone(&self.deps.control),
            key: std::sync::Arc::clone(&self.deps.key),
        };
        let (handle, task) = writer::spawn(deps, self.ctx.clone(), spec);
        self.deps.tasks.track(task);
        self.state = State::Recording {
            started: Instant::now(),
            handle,
        };
    }

    /// The live recording and the time since it started, if recording.
    fn recording(&mut self) -> Option<(std::time::Duration, &mut RecordingHandle)> {
        match &mut self.state {
            State::Recording { started, handle } => Some((started.elapsed(), handle)),
            _ => None,
        }
    }
}

impl ChannelObserver for Recorder {
    fn pty(&mut self, term: &str, cols: u32, rows: u32) {
        if let State::Waiting { pty } = &mut self.state {
            let term: String = term.chars().take(64).collect();
            *pty = Some((term, cols, rows));
        }
    }

    fn resize(&mut self, cols: u32, rows: u32) {
        match &mut self.state {
            State::Waiting { pty: Some(p) } => {
                p.1 = cols;
                p.2 = rows;
            }
            _ => {
                if let Some((at, h)) = self.recording() {
                    h.resize(at, cols, rows);
                }
            }
        }
    }

    fn shell(&mut self) {
        self.start(None);
    }

    fn exec(&mut self, command: &[u8]) {
        self.start(Some(shown_command(command)));
    }

    fn subsystem(&mut self, _name: &str) {
        self.state = State::Off;
    }

    fn client_data(&mut self, data: &[u8]) {
        if self.deps.settings.input {
            if let Some((at, h)) = self.recording() {
                h.input(at, data);
            }
        }
    }

    fn target_data(&mut self, data: &[u8]) {
        if let Some((at, h)) = self.recording() {
            h.output(at, data);
        }
    }

    fn target_extended_data(&mut self, _code: u32, data: &[u8]) {
        if let Some((at, h)) = self.recording() {
            h.output(at, data);
        }
    }

    fn closed(&mut self) {
        // Dropping the handle lets the writer store what is left and end.
        self.state = State::Off;
    }
}

/// A command line as shown in records: lossy UTF-8, at most [`MAX_COMMAND`] characters, `…` if
/// cut.
pub fn shown_command(command: &[u8]) -> String {
    let text = String::from_utf8_lossy(command);
    let mut shown: String = text.chars().take(MAX_COMMAND).collect();
    if text.chars().count() > MAX_COMMAND {
        shown.push('…');
    }
    shown
}
