//! A network-namespace lab for end-to-end tests with real programs (wireguard-go, sallyportd):
//! namespaces and veth pairs with names unique to the test, removed in `Drop` (also on panic),
//! and processes run inside them, killed in `Drop`.
//!
//! ```text
//!   Netns::new("eng") ─ veth(&eng, "10.1.0.2/24", &gw, "10.1.0.1/24") ─ Netns::new("gw")
//!   eng.spawn("wireguard-go", ["-f", IFACE])   eng.run("ip", ["route", …])
//! ```
//!
//! Needs root (`is_root`); tests that use it skip with a message otherwise. Every address is
//! inside the namespaces.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether this process runs as root (namespaces, TUN devices).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A short name unique to this process and call: `{tag}{pid % 100000}x{n}`, at most 15
/// characters for a `tag` of at most 3 (interface names are limited to 15).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{tag}{}x{n}", std::process::id() % 100_000)
}

/// A network namespace, deleted on drop with everything in it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    /// A new namespace with loopback up.
    pub fn new(tag: &str) -> Result<Self> {
        let name = format!("sp-{}", unique(tag));
        run_ok(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self {
            name,
            children: Vec::new(),
        };
        ns.run("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program args…`, as a command to adjust and run.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// Runs a program inside; fails unless it succeeds.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        run_ok(&mut self.command(program, args))
    }

    /// Runs a program inside and returns its output whatever its status.
    pub fn output(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program, args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program} in {}", self.name))
    }

    /// Starts a long-running program inside; it is killed when the namespace is dropped.
    /// Its output goes to `log` (a file) when given.
    pub fn spawn(&mut self, program: &str, args: &[&str], log: Option<&Path>) -> Result<u32> {
        let mut c = self.command(program, args);
        c.stdin(Stdio::null());
        match log {
            Some(path) => {
                let f = std::fs::File::create(path)?;
                c.stdout(f.try_clone()?).stderr(f);
            }
            None => {
                c.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = c
            .spawn()
            .with_context(|| format!("starting {program} in {}", self.name))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Stops one spawned program (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self, pid: u32) {
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.swap_remove(i);
            terminate(&mut child);
        }
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Netns {
    fn drop(&mut self) {
        for mut c in self.children.drain(..) {
            terminate(&mut c);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A veth pair between two namespaces, each end named `ifname` there, addressed and up.
pub fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str, ifname: &str) -> Result<()> {
    let tmp_a = unique("va");
    let tmp_b = unique("vb");
    run_ok(Command::new("ip").args([
        "link", "add", &tmp_a, "netns", &a.name, "type", "veth", "peer", "name", &tmp_b, "netns",
        &b.name,
    ]))?;
    for (ns, tmp, addr) in [(a, &tmp_a, a_addr), (b, &tmp_b, b_addr)] {
        ns.run("ip", &["link", "set", tmp, "name", ifname])?;
        ns.run("ip", &["addr", "add", addr, "dev", ifname])?;
        ns.run("ip", &["link", "set", ifname, "up"])?;
    }
    Ok(())
}

/// A wireguard-go interface in `ns` with a name unique on the machine (its control socket lives
/// in the shared /var/run/wireguard). Removed with the namespace.
pub fn wireguard_go(ns: &mut Netns, log_dir: &Path) -> Result<String> {
    let ifname = unique("wg");
    let log = log_dir.join(format!("{ifname}.log"));
    ns.spawn("wireguard-go", &["-f", &ifname], Some(&log))?;
    let sock = PathBuf::from(format!("/var/run/wireguard/{ifname}.sock"));
    let until = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if Instant::now() > until {
            bail!(
                "wireguard-go did not create {}: {}",
                sock.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ifname)
}

fn run_ok(c: &mut Command) -> Result<Output> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {c:?}"))?;
    if !out.status.success() {
        bail!(
            "{c:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}
