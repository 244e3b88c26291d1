//! `sallyportd`: the gateway daemon.
//!
//! ```text
//! sallyportd dev [--state-dir DIR] [--api-listen ADDR] [--ssh-listen ADDR]
//!                                                          everything local, secrets in memory
//! sallyportd run --config FILE                             production
//! sallyportd check-config --config FILE                    validate a configuration
//! sallyportd migrate (--config FILE | --database-url URL)  apply store migrations
//! sallyportd secrets init --ssm-path P [--kms-key-id K] [--rotate]
//! sallyportd mint-token --config FILE --user NAME [--ttl 1h] [--create-admin]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sallyport_core::api::CreateUser;
use sallyport_core::audit::EventKind;
use sallyport_core::model::{Role, UserName};
use sallyport_gateway::api::auth::MAX_TOKEN_TTL;
use sallyport_gateway::api::TokenIssuer;
use sallyport_gateway::config::Config;
use sallyport_gateway::control::{Actor, Control};
use sallyport_gateway::dev::{
    DevGateway, DevOptions, DevSshLimits, DEFAULT_API_LISTEN, DEFAULT_SSH_LISTEN,
};
use sallyport_gateway::gateway::{Gateway, Parts};
use sallyport_gateway::secrets::{
    init_secrets, ssm_client, SecretsError, SsmPath, SsmSecretSource,
};
use sallyport_gateway::store::Store;
use sallyport_gateway::wireguard::WireguardSettings;
use tokio::signal::unix::{signal, SignalKind};

/// Every heap block is overwritten with zeros when it is freed: a revoked or expired device's
/// boringtun `Tunn` (session keys, handshake chaining keys, preshared key), and every other freed
/// buffer that held a key or plaintext. docs/vpn.md, "Keys"; tested by
/// `gateway/tests/zeroize_on_free.rs`.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

#[derive(Debug, Parser)]
#[command(
    name = "sallyportd",
    version,
    about = "sallyport access gateway daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run locally on embedded defaults: SQLite, secrets in memory, loopback listeners.
    Dev {
        /// State directory (SQLite file, API CA certificate, admin token).
        #[arg(long, default_value = "./sallyport-dev")]
        state_dir: PathBuf,
        /// API listen address.
        #[arg(long, default_value = DEFAULT_API_LISTEN)]
        api_listen: SocketAddr,
        /// SSH (jump host) listen address.
        #[arg(long, default_value = DEFAULT_SSH_LISTEN)]
        ssh_listen: SocketAddr,
        /// Most SSH connections at once (default: as for `run`, ssh.max_connections).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        ssh_max_connections: Option<u32>,
        /// Most SSH sessions per user at once (default: as for `run`, ssh.max_sessions_per_user).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        ssh_max_sessions_per_user: Option<u32>,
        /// Run the WireGuard endpoint on this UDP address (needs root: a TUN device).
        #[arg(long, value_name = "ADDR")]
        wg_listen: Option<SocketAddr>,
        /// What enrolled clients put in `Endpoint =` (default: the listen address).
        #[arg(long, value_name = "HOST:PORT", requires = "wg_listen")]
        wg_endpoint: Option<String>,
        /// The TUN device's name.
        #[arg(
            long,
            value_name = "NAME",
            default_value = "sallyport0",
            requires = "wg_listen"
        )]
        wg_tun: String,
        /// The VPN address pool.
        #[arg(long, value_name = "CIDR", requires = "wg_listen")]
        wg_pool: Option<ipnet::Ipv4Net>,
        /// Preshared-key lifetime (default 12h).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "wg_listen")]
        wg_psk_lifetime: Option<Duration>,
        /// Source-NAT the pool out of this interface (nftables table of sallyportd's own).
        #[arg(long, value_name = "IFACE", requires = "wg_listen")]
        wg_nat_out: Option<String>,
    },
    /// Run in production from a configuration file.
    Run {
        /// TOML configuration (see packaging/sallyportd.example.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file and print what it resolves to.
    CheckConfig {
        /// TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Apply store migrations.
    Migrate {
        /// TOML configuration (its store.url).
        #[arg(
            long,
            conflicts_with = "database_url",
            required_unless_present = "database_url"
        )]
        config: Option<PathBuf>,
        /// Store URL (sqlite://PATH or postgres://…).
        #[arg(long, env = "SALLYPORT_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Manage the gateway's secrets in SSM Parameter Store.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Mint an API token locally with the gateway's JWT key (bootstrap).
    MintToken {
        /// TOML configuration.
        #[arg(long)]
        config: PathBuf,
        /// The user the token is for.
        #[arg(long)]
        user: UserName,
        /// Lifetime.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Create the user as admin and auditor if the store has no users yet.
        #[arg(long)]
        create_admin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Generate the gateway's secrets and store them as SecureStrings.
    Init {
        /// Parameter path, e.g. /sallyport/prod.
        #[arg(long)]
        ssm_path: String,
        /// KMS key for the SecureStrings (default: the account's aws/ssm key).
        #[arg(long)]
        kms_key_id: Option<String>,
        /// Replace existing parameters.
        #[arg(long)]
        rotate: bool,
        /// AWS region.
        #[arg(long)]
        region: Option<String>,
        /// Endpoint override.
        #[arg(long)]
        endpoint_url: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    init_tracing();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("sallyportd: {e:#}");
        std::process::exit(1);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev {
            state_dir,
            api_listen,
            ssh_listen,
            ssh_max_connections,
            ssh_max_sessions_per_user,
            wg_listen,
            wg_endpoint,
            wg_tun,
            wg_pool,
            wg_psk_lifetime,
            wg_nat_out,
        } => {
            let limits = DevSshLimits {
                max_connections: ssh_max_connections.map(|n| n as usize),
                max_sessions_per_user: ssh_max_sessions_per_user.map(|n| n as usize),
            };
            let opts = DevOptions {
                state_dir,
                api_listen,
                ssh_listen,
            };
            let gw = match wg_listen {
                None => DevGateway::start_with_limits(opts, limits).await?,
                Some(listen) => {
                    let defaults = WireguardSettings::default();
                    let wg = WireguardSettings {
                        listen,
                        endpoint: wg_endpoint,
                        tun_name: wg_tun,
                        pool: wg_pool.unwrap_or(defaults.pool),
                        psk_lifetime: wg_psk_lifetime.unwrap_or(defaults.psk_lifetime),
                        nat: wg_nat_out.is_some(),
                        nat_out_interface: wg_nat_out,
                        nat_table: format!("sallyport_{}", std::process::id()),
                        ..defaults
                    };
                    if let Err((key, message)) = wg.validate() {
                        bail!("--wg-*: {key}: {message}");
                    }
                    DevGateway::start_with_vpn(opts, limits, wg).await?
                }
            };
            println!("{}", gw.banner());
            wait_for_signal().await?;
            gw.shutdown().await;
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let secrets = load_secrets(&config).await?;
            let api_tls = match (&config.api.tls_cert_file, &config.api.tls_key_file) {
                (Some(cert), Some(key)) => sallyport_gateway::tls::from_files(cert, key)?,
                _ => {
                    let mut names = config.api.names.clone();
                    if names.is_empty() {
                        names = vec!["localhost".into(), sallyport_gateway::config::host_name()];
                        if !config.api.listen.ip().is_unspecified() {
                            names.push(config.api.listen.ip().to_string());
                        }
                    }
                    let tls = sallyport_gateway::tls::generate(&names)?;
                    if let Some(pem) = &tls.ca_pem {
                        let path = config.state_dir.join("api-ca.pem");
                        std::fs::write(&path, pem)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                    tls
                }
            };
            let gw = Gateway::start(Parts {
                instance: config.instance_name(),
                store_url: config.store_url(),
                secrets: Arc::new(secrets),
                api_tls,
                api_listen: config.api.listen,
                ssh: config.ssh.clone(),
                audit: config.audit.clone(),
                propagation: config.propagation(),
                wireguard: config.wireguard.clone(),
            })
            .await?;
            wait_for_signal().await?;
            gw.shutdown().await;
        }
        Command::CheckConfig { config } => {
            let path = config.display().to_string();
            let config = Config::load(&config)?;
            println!("{path}: OK");
            println!("  instance    {}", config.instance_name());
            println!(
                "  store       {}",
                sallyport_gateway::store::redact_url(&config.store_url())
            );
            println!("  secrets     ssm:{}", config.secrets.ssm_path);
            println!("  api         https://{}", config.api.listen);
            println!("  ssh         {}", config.ssh.listen);
            if let (Some(cw), Some(stream)) = (&config.audit.cloudwatch, config.log_stream()) {
                println!("  audit       cloudwatch:{}:{stream}", cw.log_group);
            }
            if config.audit.stdout {
                println!("  audit       stdout (JSON lines)");
            }
        }
        Command::Migrate {
            config,
            database_url,
        } => {
            let url = match (config, database_url) {
                (Some(path), _) => Config::load(&path)?.store_url(),
                (None, Some(url)) => url,
                (None, None) => bail!("give --config or --database-url"),
            };
            let store = Store::connect(&url).await?;
            store.migrate().await?;
            store.close().await;
            println!(
                "migrations applied to {}",
                sallyport_gateway::store::redact_url(&url)
            );
        }
        Command::Secrets {
            command:
                SecretsCommand::Init {
                    ssm_path,
                    kms_key_id,
                    rotate,
                    region,
                    endpoint_url,
                },
        } => {
            let path = SsmPath::parse(&ssm_path)?;
            let client = ssm_client(region, endpoint_url).await;
            let report = match init_secrets(&client, &path, kms_key_id.as_deref(), rotate).await {
                Err(e @ SecretsError::AlreadyExist { .. }) => {
                    bail!("{e}; pass --rotate to replace them")
                }
                other => other?,
            };
            for name in &report.written {
                let verb = if report.replaced.contains(name) {
                    "replaced"
                } else {
                    "created"
                };
                println!("{verb} {name}");
            }
        }
        Command::MintToken {
            config,
            user,
            ttl,
            create_admin,
        } => {
            let config = Config::load(&config)?;
            let secrets = load_secrets(&config).await?;
            let store = Store::connect(&config.store_url()).await?;
            store.migrate().await?;
            // Journals into this gateway's chain (beside the running gateway, never the shared one).
            store.set_instance(&config.instance_name());
            let control = Control::open(store.clone()).await?;
            if store.get_user(&user).await?.is_none() {
                if !create_admin || !store.list_users().await?.is_empty() {
                    bail!("user {user} does not exist (--create-admin creates it only in an empty store)");
                }
                let req = CreateUser {
                    name: user.clone(),
                    roles: vec![Role::Admin, Role::Auditor],
                    groups: Vec::new(),
                };
                control.create_user(&Actor::system(), req).await?;
            }
            if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
                bail!("--ttl must be between 1s and 24h");
            }
            let issued =
                TokenIssuer::new(secrets.jwt_signing_key().expose_secret()).issue(&user, ttl)?;
            let record = EventKind::TokenIssued {
                user: user.clone(),
                token_id: issued.id.clone(),
                expires_at: issued.expires_at,
            };
            control.record(&Actor::system(), record).await?;
            store.close().await;
            println!("{}", issued.token);
        }
    }
    Ok(())
}

async fn load_secrets(
    config: &Config,
) -> anyhow::Result<sallyport_gateway::secrets::GatewaySecrets> {
    let path = SsmPath::parse(&config.secrets.ssm_path)?;
    let client = ssm_client(
        config.secrets.region.clone(),
        config.secrets.endpoint_url.clone(),
    )
    .await;
    Ok(SsmSecretSource::new(client, path).load().await?)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    Ok(())
}
