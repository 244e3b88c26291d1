//! The VPN lab: a target namespace with echo services, a gateway namespace running the real
//! `sallyportd dev --wg-listen …` (TUN device, nftables NAT), and engineer namespaces running
//! `wireguard-go` configured with `wg setconf` from the file `sallyport vpn enroll` wrote.
//!
//! ```text
//!  engineer i (192.168.7i.2) ──veth ve{i}── gateway (sallyportd, TUN spt0 100.64.0.1/24)
//!      wireguard-go wgNNN                    │ NAT out of vt
//!                                           └──veth vt── target 10.99.2.2 (+ .3)
//!                                                         TCP echo 5432, 8080; UDP 5353, 5454
//! ```

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sallyport_tests::netns::{self, Netns};

pub const TARGET: &str = "10.99.2.2";
pub const OTHER_TARGET: &str = "10.99.2.3";
const API: &str = "https://127.0.0.1:8443";

pub struct Engineer {
    pub ns: Netns,
    pub user: String,
    pub token: String,
    pub ifname: String,
    /// The VPN address (no prefix).
    pub address: String,
    pub device: String,
    /// The wg-quick file `sallyport vpn enroll` wrote.
    pub conf: PathBuf,
    pub gateway_key: String,
}

pub struct Lab {
    pub engineers: Vec<Engineer>,
    pub gw: Netns,
    pub tgt: Netns,
    pub dir: tempfile::TempDir,
    probe: PathBuf,
    gw_pid: u32,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn bin(name: &str) -> PathBuf {
    workspace_root().join("target/debug").join(name)
}

/// Why the lab cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !netns::is_root() {
        return Some("needs root (network namespaces, TUN devices)".into());
    }
    for p in ["wireguard-go", "wg", "ip", "nft"] {
        if !netns::have(p) {
            return Some(format!("needs {p} (scripts/test installs it)"));
        }
    }
    if !Path::new("/usr/bin/python3").exists() {
        return Some("needs /usr/bin/python3".into());
    }
    for b in ["sallyportd", "sallyport"] {
        if !bin(b).is_file() {
            return Some(format!(
                "{} is missing: run `cargo build --bins` first (scripts/test does)",
                bin(b).display()
            ));
        }
    }
    None
}

/// Skips the calling test with a clear message when the lab cannot run.
#[macro_export]
macro_rules! lab_or_skip {
    ($psk:expr) => {{
        if let Some(why) = vpn_common::unavailable() {
            eprintln!("SKIPPED: VPN end-to-end test {}", why);
            return;
        }
        vpn_common::Lab::start($psk).unwrap()
    }};
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

impl Lab {
    /// Target, gateway (with `--wg-psk-lifetime psk` when given), no engineers yet.
    pub fn start(psk_lifetime: Option<&str>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let probe = dir.path().join("probe.py");
        std::fs::write(&probe, include_str!("probe.py"))?;
        let mut tgt = Netns::new("tg")?;
        let mut gw = Netns::new("gw")?;
        netns::veth(&gw, "10.99.2.1/24", &tgt, "10.99.2.2/24", "vt")?;
        tgt.run("ip", &["addr", "add", "10.99.2.3/24", "dev", "vt"])?;
        let p = probe.display().to_string();
        tgt.spawn(
            "/usr/bin/python3",
            &[&p, "serve", "5432,8080", "5353,5454"],
            Some(&dir.path().join("echo.log")),
        )?;
        wait_until("echo servers", Duration::from_secs(20), || {
            tgt.output("/usr/bin/python3", &[&p, "tcp", "127.0.0.1", "5432"])
                .map(|o| out(&o) == "OK")
                .unwrap_or(false)
        })?;
        let state = dir.path().join("state");
        let state_s = state.display().to_string();
        let sallyportd = bin("sallyportd").display().to_string();
        let mut args = vec![
            "dev",
            "--state-dir",
            &state_s,
            "--api-listen",
            "127.0.0.1:8443",
            "--ssh-listen",
            "127.0.0.1:2222",
            "--wg-listen",
            "0.0.0.0:51820",
            "--wg-tun",
            "spt0",
            "--wg-pool",
            "100.64.0.0/24",
            "--wg-nat-out",
            "vt",
        ];
        if let Some(l) = psk_lifetime {
            args.extend(["--wg-psk-lifetime", l]);
        }
        let log = dir.path().join("sallyportd.log");
        let gw_pid = gw.spawn(&sallyportd, &args, Some(&log))?;
        let lab = Self {
            engineers: Vec::new(),
            gw,
            tgt,
            dir,
            probe,
            gw_pid,
        };
        let token = state.join("admin.token");
        wait_until("sallyportd", Duration::from_secs(60), || {
            token.exists() && lab.admin(&["whoami"]).is_ok()
        })
        .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;
        Ok(lab)
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The gateway's log so far.
    pub fn gateway_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sallyportd.log")).unwrap_or_default()
    }

    fn cli(&self, token: Option<&str>, args: &[&str]) -> Command {
        let ca = self.state().join("api-ca.pem").display().to_string();
        let mut all = vec!["--gateway", API, "--ca-cert", &ca];
        let token_file = self.state().join("admin.token").display().to_string();
        if token.is_none() {
            all.extend(["--token-file", &token_file]);
        }
        all.extend(args);
        let mut c = self
            .gw
            .command(&bin("sallyport").display().to_string(), &all);
        c.env_remove("SALLYPORT_TOKEN");
        if let Some(t) = token {
            c.env("SALLYPORT_TOKEN", t);
        }
        c
    }

    fn run_cli(&self, token: Option<&str>, args: &[&str]) -> Result<String> {
        let o = self.cli(token, args).output()?;
        if !o.status.success() {
            bail!(
                "sallyport {args:?}: {}{}",
                out(&o),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(out(&o))
    }

    /// `sallyport ARGS` as the bootstrap admin; stdout.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        self.run_cli(None, args)
    }

    /// `sallyport ARGS` as engineer `i`.
    pub fn as_engineer(&self, i: usize, args: &[&str]) -> Result<String> {
        let token = self
            .engineers
            .get(i)
            .map(|e| e.token.clone())
            .context("no such engineer")?;
        self.run_cli(Some(&token), args)
    }

    /// A grant; returns its id.
    pub fn grant(
        &self,
        user: &str,
        cidr: &str,
        proto: &str,
        ports: Option<&str>,
    ) -> Result<String> {
        let mut args = vec![
            "grant", user, cidr, "--proto", proto, "--reason", "vpn-test",
        ];
        if let Some(p) = ports {
            args.extend(["--ports", p]);
        }
        self.admin(&args)
    }

    /// A user, its own engineer namespace, and `grants` (`(cidr, proto, ports)`) made before
    /// enrolment, so the file's AllowedIPs reflect them.
    pub fn add_user(&mut self, user: &str, grants: &[(&str, &str, Option<&str>)]) -> Result<usize> {
        let i = self.engineers.len();
        let ns = Netns::new("en")?;
        let subnet = format!("192.168.{}", 70 + i);
        netns::veth(
            &ns,
            &format!("{subnet}.2/24"),
            &self.gw,
            &format!("{subnet}.1/24"),
            &format!("ve{i}"),
        )?;
        self.admin(&["user", "add", user, "--role", "engineer"])?;
        for (cidr, proto, ports) in grants {
            self.grant(user, cidr, proto, *ports)?;
        }
        let token = self.admin(&["token", "issue", user, "--ttl", "2h"])?;
        let conf = self.dir.path().join(format!("{user}.conf"));
        let conf_s = conf.display().to_string();
        self.run_cli(
            Some(&token),
            &["vpn", "enroll", "--name", "laptop", "--file", &conf_s],
        )?;
        let text = std::fs::read_to_string(&conf)?;
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = ")))
                .map(str::to_owned)
                .with_context(|| format!("{k} missing from the wg-quick file:\n{text}"))
        };
        let address = field("Address")?;
        let gateway_key = field("PublicKey")?;
        let device = text
            .lines()
            .find_map(|l| l.strip_prefix("# sallyport device "))
            .and_then(|r| r.split_whitespace().next())
            .context("no device line")?
            .to_owned();
        let mut eng = Engineer {
            ns,
            user: user.to_owned(),
            token,
            ifname: String::new(),
            address: address.trim_end_matches("/32").to_owned(),
            device,
            conf,
            gateway_key,
        };
        eng.ifname = netns::wireguard_go(&mut eng.ns, self.dir.path())?;
        self.engineers.push(eng);
        self.configure(i, &subnet)?;
        Ok(i)
    }

    /// `wg setconf` from the enrolled file (Address stripped as `wg-quick strip` does, the
    /// endpoint this namespace reaches, AllowedIPs widened so the gateway's filter, not the
    /// client, is what refuses), then the address and routes.
    fn configure(&self, i: usize, subnet: &str) -> Result<()> {
        let e = self.engineers.get(i).context("engineer")?;
        let text = std::fs::read_to_string(&e.conf)?;
        let mut wg = String::new();
        for line in text.lines() {
            if line.starts_with("Address") {
                continue;
            } else if line.starts_with("Endpoint") {
                wg.push_str(&format!("Endpoint = {subnet}.1:51820\n"));
            } else if line.starts_with("AllowedIPs") || line.starts_with("# AllowedIPs") {
                wg.push_str("AllowedIPs = 10.99.2.0/24, 100.64.0.0/24\n");
            } else {
                wg.push_str(line);
                wg.push('\n');
            }
        }
        let path = self.dir.path().join(format!("{}.wg", e.user));
        std::fs::write(&path, wg)?;
        let p = path.display().to_string();
        e.ns.run("wg", &["setconf", &e.ifname, &p])?;
        let addr = format!("{}/32", e.address);
        if !e
            .ns
            .output("ip", &["addr", "show", "dev", &e.ifname])
            .map(|o| out(&o).contains(&addr))
            .unwrap_or(false)
        {
            e.ns.run("ip", &["addr", "add", &addr, "dev", &e.ifname])?;
            e.ns.run("ip", &["link", "set", &e.ifname, "mtu", "1420", "up"])?;
            e.ns.run("ip", &["route", "add", "10.99.2.0/24", "dev", &e.ifname])?;
            e.ns.run("ip", &["route", "add", "100.64.0.0/24", "dev", &e.ifname])?;
        }
        Ok(())
    }

    /// Re-reads engineer `i`'s file (after `vpn refresh --file`) into wireguard-go, with a
    /// fresh peer so that it handshakes at once.
    pub fn reload(&self, i: usize) -> Result<()> {
        let e = self.engineers.get(i).context("engineer")?;
        e.ns.run("wg", &["set", &e.ifname, "peer", &e.gateway_key, "remove"])?;
        self.configure(i, &format!("192.168.{}", 70 + i))
    }

    /// One probe from engineer `i`: `tcp`/`udp` to HOST:PORT; OK, REFUSED, UNREACH, TIMEOUT.
    pub fn probe(&self, i: usize, kind: &str, host: &str, port: u16, bind: Option<&str>) -> String {
        let Some(e) = self.engineers.get(i) else {
            return "no engineer".into();
        };
        let p = self.probe.display().to_string();
        let port = port.to_string();
        let mut args = vec![p.as_str(), kind, host, port.as_str()];
        if let Some(b) = bind {
            args.push(b);
        }
        e.ns.output("/usr/bin/python3", &args)
            .map(|o| format!("{}{}", out(&o), String::from_utf8_lossy(&o.stderr).trim()))
            .unwrap_or_else(|err| err.to_string())
    }

    /// Probes until OK (the first packets also carry the handshake) or `deadline`.
    pub fn probe_ok(&self, i: usize, kind: &str, host: &str, port: u16) -> String {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.probe(i, kind, host, port, None);
            if r == "OK" || Instant::now() > until {
                return r;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts `probe.py stream` from engineer `i`; its output goes to the returned file.
    pub fn stream(&mut self, i: usize, host: &str, port: u16, seconds: u32) -> Result<PathBuf> {
        let log = self.dir.path().join(format!("stream-{i}.log"));
        let p = self.probe.display().to_string();
        let port = port.to_string();
        let secs = seconds.to_string();
        let e = self.engineers.get_mut(i).context("engineer")?;
        e.ns.spawn(
            "/usr/bin/python3",
            &[&p, "stream", host, &port, &secs],
            Some(&log),
        )?;
        Ok(log)
    }

    /// Journal events of one name as JSON records.
    pub fn events(&self, name: &str) -> Result<Vec<serde_json::Value>> {
        let text = self.admin(&[
            "audit", "search", "--type", name, "--limit", "1000", "-o", "json",
        ])?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Stops sallyportd (SIGTERM) and waits for it.
    pub fn stop_gateway(&mut self) {
        self.gw.stop(self.gw_pid);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sallyportd log ---\n{}", self.gateway_log());
        }
    }
}

/// Polls `ok` every 100 ms until it holds or `deadline` passes.
pub fn wait_until(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let until = Instant::now() + deadline;
    while !ok() {
        if Instant::now() > until {
            bail!("{what} not ready within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Seconds since the epoch, as probe.py prints them.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
