//! `sallyport-agent [--socket PATH] [--foreground]`: the engineer's in-memory ssh-agent.
//!
//! Prints `SSH_AUTH_SOCK=PATH; export SSH_AUTH_SOCK;` like `ssh-agent`, so
//! `eval "$(sallyport-agent)"` sets up a shell. Without `--foreground` it starts itself again in
//! the background (no fork, no unsafe) and prints once that copy listens.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Parser;
use sallyport_agent::server::{self, Agent};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(
    name = "sallyport-agent",
    version,
    about = "In-memory ssh-agent for sallyport: keys and certificates never touch the disk"
)]
struct Args {
    /// Socket to listen on [default: $XDG_RUNTIME_DIR/sallyport-agent.sock, else
    /// /tmp/sallyport-agent-$UID/agent.sock].
    #[arg(long, short = 'a', value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Stay in the foreground (logs to stderr) instead of starting in the background.
    #[arg(long, short = 'D')]
    foreground: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let socket = match args.socket {
        Some(path) => absolute(&path)?,
        None => sallyport_agent::default_socket_path(),
    };
    if args.foreground {
        run_foreground(&socket)
    } else {
        start_background(&socket)
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(path))
}

/// Prints the shell lines in one write, ignoring a closed stdout (the background launcher
/// reads them and exits; a later failed write must not take the agent down).
fn print_env(socket: &Path, pid: u32) {
    use std::io::Write;
    let text = format!(
        "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\nSSH_AGENT_PID={pid}; export SSH_AGENT_PID;\necho Agent pid {pid};\n",
        socket.display()
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Re-runs this binary with `--foreground`, detached, and passes on what it prints once it
/// listens (its first line names the socket); if it exits first, says so.
fn start_background(socket: &Path) -> Result<()> {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding this program")?;
    let mut child = Command::new(exe)
        .arg("--foreground")
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Nobody reads the background agent's logs; run with --foreground to see them.
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the agent in the background")?;
    let Some(stdout) = child.stdout.take() else {
        bail!("no pipe to the background agent");
    };
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .context("reading from the background agent")?;
    if !first.starts_with("SSH_AUTH_SOCK=") {
        let status = child.wait()?;
        bail!("the agent exited ({status}); run it with --foreground to see why");
    }
    print_env(socket, child.id());
    Ok(())
}

fn run_foreground(socket: &Path) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // Like OpenSSH's ssh-agent: no core dumps, and other same-uid processes cannot ptrace us.
    if let Err(err) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!(cause = %err, "could not mark the process non-dumpable");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(socket))
}

async fn run(socket: &Path) -> Result<()> {
    // Handlers first, so that a signal after the bind always removes the socket.
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let uid = sallyport_agent::current_uid();
    prepare_directory(socket, uid)?;
    clear_stale_socket(socket).await?;
    let listener = bind_private(socket)?;
    print_env(socket, std::process::id());
    tracing::info!(socket = %socket.display(), "listening");

    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    };
    let agent = Agent::new();
    server::serve(listener, agent.clone(), uid, shutdown).await;
    agent.clear().await;
    let _ = std::fs::remove_file(socket);
    tracing::info!("stopped; identities zeroized, socket removed");
    Ok(())
}

/// Creates the socket's directory (0700) if missing; the fallback directory must be ours and
/// 0700.
fn prepare_directory(socket: &Path, uid: u32) -> Result<()> {
    let Some(dir) = socket.parent() else {
        bail!("socket path {} has no directory", socket.display());
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating socket directory {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting 0700 on {}", dir.display()))?;
    }
    if dir == sallyport_agent::fallback_socket_dir() {
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
            bail!(
                "{} must be a directory owned by uid {uid} with mode 0700",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Refuses to start over a live agent; removes a stale socket; refuses any other file.
async fn clear_stale_socket(socket: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(socket) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; not touching it",
            socket.display()
        );
    }
    if server::is_live_socket(socket).await {
        bail!("an agent is already listening on {}", socket.display());
    }
    std::fs::remove_file(socket)
        .with_context(|| format!("removing stale socket {}", socket.display()))?;
    tracing::info!(socket = %socket.display(), "removed a stale socket");
    Ok(())
}

/// Binds under a temporary name, sets 0600, then renames into place, so the socket is never
/// reachable with wider permissions.
fn bind_private(socket: &Path) -> Result<tokio::net::UnixListener> {
    let mut tmp_name = socket.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let listener = tokio::net::UnixListener::bind(&tmp)
        .with_context(|| format!("binding {}", tmp.display()))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, socket));
    if let Err(err) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("placing socket {}", socket.display()));
    }
    Ok(listener)
}
