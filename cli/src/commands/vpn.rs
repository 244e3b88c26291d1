//! `vpn enroll` and `vpn refresh`: the device's WireGuard key pair is made here, in memory;
//! only its public half goes to the gateway. The private key goes into the wg-quick file
//! (mode 0600) or to standard output, nowhere else.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Ctx;
use crate::error::CliError;
use crate::output::{decode, Format};

/// `sallyport vpn enroll` as checked arguments.
#[derive(Debug)]
pub struct Enroll {
    /// The device's name.
    pub name: Option<String>,
    /// Write the wg-quick file here (mode 0600) instead of printing it.
    pub file: Option<PathBuf>,
    /// Also print a QR code of the file (for the mobile apps).
    pub qr: bool,
}

/// `sallyport vpn refresh`.
#[derive(Debug)]
pub struct Refresh {
    /// The device (default: the one named in `file`).
    pub device: Option<String>,
    /// A wg-quick file from `vpn enroll` to update in place.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct EnrollBody<'a> {
    public_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// The gateway's answer to enroll and refresh (`EnrolledView`).
#[derive(Debug, Deserialize)]
pub struct Enrolled {
    /// The device.
    pub device: DeviceInfo,
    /// `Address =`.
    pub address: String,
    /// The gateway's public key.
    pub gateway_public_key: String,
    /// `Endpoint =`.
    pub endpoint: String,
    /// `AllowedIPs =`.
    pub allowed_ips: Vec<String>,
    /// `PresharedKey =`.
    pub preshared_key: String,
    /// When the preshared key stops working.
    pub preshared_key_expires_at: String,
}

/// The device part of the answer.
#[derive(Debug, Deserialize)]
pub struct DeviceInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// The wg-quick file for a device (pure).
pub fn wg_quick(private_key: &str, e: &Enrolled) -> Zeroizing<String> {
    let allowed = if e.allowed_ips.is_empty() {
        // No VPN grant yet: nothing to route. `wg` refuses an empty AllowedIPs value.
        "# AllowedIPs: none yet (no tcp/udp/icmp grant); enroll again once you have one".to_owned()
    } else {
        format!("AllowedIPs = {}", e.allowed_ips.join(", "))
    };
    Zeroizing::new(format!(
        "# sallyport device {id} ({name})\n\
         # PresharedKey expires {exp}: renew with `sallyport vpn refresh --file THIS_FILE`\n\
         [Interface]\n\
         PrivateKey = {private_key}\n\
         Address = {address}\n\
         \n\
         [Peer]\n\
         PublicKey = {gw}\n\
         PresharedKey = {psk}\n\
         Endpoint = {endpoint}\n\
         {allowed}\n\
         PersistentKeepalive = 25\n",
        id = e.device.id,
        name = e.device.name,
        exp = e.preshared_key_expires_at,
        address = e.address,
        gw = e.gateway_public_key,
        psk = e.preshared_key,
        endpoint = e.endpoint,
    ))
}

/// A new key pair, in memory: (private, public), base64.
fn key_pair() -> (Zeroizing<String>, String) {
    let secret = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
    let public = x25519_dalek::PublicKey::from(&secret);
    let private = Zeroizing::new(STANDARD.encode(secret.to_bytes()));
    (private, STANDARD.encode(public.as_bytes()))
}

pub(super) async fn enroll(ctx: &Ctx, args: Enroll) -> Result<(), CliError> {
    let (private, public) = key_pair();
    let body = EnrollBody {
        public_key: &public,
        name: args.name.as_deref(),
    };
    let reply = ctx.api.post(&["vpn", "devices"], Some(&body)).await?;
    let enrolled: Enrolled = decode(&reply.url, reply.body.clone())?;
    let file = wg_quick(&private, &enrolled);
    if let Some(path) = &args.file {
        write_private(path, file.as_bytes())?;
    }
    match ctx.out.format() {
        Format::Json if args.file.is_some() => ctx.out.json(&reply.body),
        Format::Json => {
            // The private key only exists here: give it with the answer.
            let mut v = reply.body;
            if let Some(o) = v.as_object_mut() {
                o.insert("private_key".into(), private.as_str().into());
            }
            ctx.out.json(&v)
        }
        Format::Table => {
            let mut text = String::new();
            match &args.file {
                Some(p) => text.push_str(&format!(
                    "device {} enrolled: {} written (mode 0600); bring it up with wg-quick up {}\n",
                    enrolled.device.id,
                    p.display(),
                    p.display()
                )),
                None => text.push_str(&file),
            }
            if args.qr {
                text.push_str(&qr(&file)?);
            }
            ctx.out.text(&text)
        }
    }
}

pub(super) async fn refresh(ctx: &Ctx, args: Refresh) -> Result<(), CliError> {
    let existing = match &args.file {
        Some(p) => Some(Zeroizing::new(std::fs::read_to_string(p).map_err(
            |source| CliError::ReadFile {
                what: "wg-quick file",
                path: p.clone(),
                source,
            },
        )?)),
        None => None,
    };
    let id = match (&args.device, &existing) {
        (Some(id), _) => id.clone(),
        (None, Some(text)) => device_in(text).ok_or(CliError::Config(
            "the file has no `# sallyport device ID` line: give the device id",
        ))?,
        (None, None) => {
            return Err(CliError::Config(
                "give the device id, or --file FILE from `sallyport vpn enroll`",
            ))
        }
    };
    let reply = ctx
        .api
        .post::<()>(&["vpn", "devices", &id, "refresh"], None)
        .await?;
    let enrolled: Enrolled = decode(&reply.url, reply.body.clone())?;
    if let (Some(path), Some(text)) = (&args.file, &existing) {
        let updated = replace_psk(text, &enrolled);
        write_private(path, updated.as_bytes())?;
    }
    match ctx.out.format() {
        Format::Json => ctx.out.json(&reply.body),
        Format::Table => ctx.out.text(&match &args.file {
            Some(p) => format!(
                "preshared key renewed until {} in {}; apply it with: wg syncconf IFACE <(wg-quick strip {})\n",
                enrolled.preshared_key_expires_at,
                p.display(),
                p.display()
            ),
            None => format!(
                "PresharedKey = {}\n# expires {}\n",
                enrolled.preshared_key, enrolled.preshared_key_expires_at
            ),
        }),
    }
}

/// The device id in a file written by `vpn enroll`.
pub fn device_in(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("# sallyport device "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// The file with its PresharedKey and expiry comment replaced (pure).
pub fn replace_psk(text: &str, e: &Enrolled) -> Zeroizing<String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.trim_start().starts_with("PresharedKey") {
            out.push_str(&format!("PresharedKey = {}", e.preshared_key));
        } else if line.starts_with("# PresharedKey expires ") {
            out.push_str(&format!(
                "# PresharedKey expires {}: renew with `sallyport vpn refresh --file THIS_FILE`",
                e.preshared_key_expires_at
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Zeroizing::new(out)
}

fn qr(text: &str) -> Result<String, CliError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| CliError::Output(std::io::Error::other(e.to_string())))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build()
        + "\n")
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        CliError::Output(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Enrolled {
        Enrolled {
            device: DeviceInfo {
                id: "0b6f3f9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
                name: "laptop".into(),
            },
            address: "100.64.0.2/32".into(),
            gateway_public_key: "GW=".into(),
            endpoint: "gw.example:51820".into(),
            allowed_ips: vec!["10.0.12.0/24".into(), "10.0.13.7/32".into()],
            preshared_key: "PSK1=".into(),
            preshared_key_expires_at: "2026-01-01T12:00:00Z".into(),
        }
    }

    #[test]
    fn wg_quick_file_has_every_line() {
        let f = wg_quick("PRIV=", &answer());
        assert!(f.contains("PrivateKey = PRIV=\n"));
        assert!(f.contains("Address = 100.64.0.2/32\n"));
        assert!(f.contains("PublicKey = GW=\n"));
        assert!(f.contains("PresharedKey = PSK1=\n"));
        assert!(f.contains("Endpoint = gw.example:51820\n"));
        assert!(f.contains("AllowedIPs = 10.0.12.0/24, 10.0.13.7/32\n"));
        assert_eq!(
            device_in(&f).as_deref(),
            Some("0b6f3f9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
        );
    }

    #[test]
    fn no_grant_means_no_allowed_ips_line() {
        let mut e = answer();
        e.allowed_ips.clear();
        let f = wg_quick("PRIV=", &e);
        assert!(!f.contains("\nAllowedIPs"), "{}", *f);
        assert!(f.contains("# AllowedIPs: none yet"));
    }

    #[test]
    fn refresh_replaces_only_the_psk() {
        let f = wg_quick("PRIV=", &answer());
        let mut next = answer();
        next.preshared_key = "PSK2=".into();
        next.preshared_key_expires_at = "2026-01-02T00:00:00Z".into();
        let g = replace_psk(&f, &next);
        assert!(g.contains("PresharedKey = PSK2=\n"));
        assert!(!g.contains("PSK1="));
        assert!(g.contains("PrivateKey = PRIV=\n"));
        assert!(g.contains("expires 2026-01-02T00:00:00Z"));
    }

    #[test]
    fn key_pairs_are_fresh_and_valid() {
        let (a, pa) = key_pair();
        let (b, pb) = key_pair();
        assert_ne!(*a, *b);
        assert_ne!(pa, pb);
        assert_eq!(STANDARD.decode(&pa).unwrap().len(), 32);
    }

    #[test]
    fn qr_renders() {
        let q = qr(&wg_quick("PRIV=", &answer())).unwrap();
        assert!(q.lines().count() > 20);
    }
}
