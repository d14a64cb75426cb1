//! `guidedesk-hq`: the headquarters server and its administration commands.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use guidedesk::hq::admin::{self, ADMIN_FILE, AdminRequest, DEFAULT_CODE_TTL_HOURS};
use guidedesk::hq::backend::HqBackend;
use guidedesk::hq::limits::{ApiOptions, RateLimit};
use guidedesk::hq::pg::{PgConfig, PgStore};
use guidedesk::hq::relay::outbound::{self, RelayLoop};
use guidedesk::hq::reports_api::ReportsToken;
use guidedesk::hq::server::{self, ServeOptions, TlsFiles};
use guidedesk::hq::store::{HqError, HqStore};
use guidedesk_sync::client::{ClientConfig, HttpTransport};

/// Default number of reference change-log entries kept at each import.
const DEFAULT_CHANGELOG_KEEP: usize = 100;

/// GuideDesk headquarters: receives every kiosk's records and serves reference data.
#[derive(Debug, Parser)]
#[command(name = "guidedesk-hq", version, about, long_about = None)]
struct Cli {
    /// HQ's data directory (holds hq.redb)
    #[arg(long, global = true, env = "GUIDEDESK_HQ_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Store everything in PostgreSQL instead of the data directory, e.g. `postgres://hq@db.example/guidedesk`
    /// (administration commands then work on the database directly, from any machine that reaches it)
    #[arg(long, global = true, env = "GUIDEDESK_HQ_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,

    /// PostgreSQL schema to use (created when missing); default: the connection's search path
    #[arg(long, global = true, env = "GUIDEDESK_HQ_DATABASE_SCHEMA", value_name = "NAME")]
    database_schema: Option<String>,

    /// Largest number of PostgreSQL connections this process keeps
    #[arg(long, global = true, default_value_t = 8, value_name = "N")]
    db_max_connections: u32,

    /// PostgreSQL statement timeout, seconds
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    db_statement_timeout: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8443 (port 0: any free port)
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// TLS certificate chain (PEM)
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM)
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)
        #[arg(long)]
        allow_plain_http: bool,
        /// Reference-data changes kept in the pull log (older superseded ones are dropped; kiosks behind them get
        /// a full snapshot)
        #[arg(long, default_value_t = DEFAULT_CHANGELOG_KEEP, value_name = "N")]
        changelog_keep: usize,
        /// File whose first line is the HQ reporting token (at least 32 characters); enables the report endpoints
        /// and the overview page
        #[arg(long, value_name = "FILE")]
        reports_token_file: Option<PathBuf>,
        /// Requests per second each client (credential) may make, sustained; 0 turns the rate limit off
        #[arg(long, default_value_t = 20.0, value_name = "N")]
        rate_per_second: f64,
        /// Requests each client may make in a burst
        #[arg(long, default_value_t = 60, value_name = "N")]
        rate_burst: u32,
        /// Seconds a request may take before HQ answers 503 timeout
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        request_timeout: u64,
        /// Open connections HQ keeps; one more is closed at once (and logged)
        #[arg(long, default_value_t = guidedesk::hq::limits::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
        max_connections: usize,
        /// Seconds a connection has to send a complete request head (idle kept-alive connections close after it)
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        header_timeout: u64,
        /// Run as a site hub relaying to this group HQ (the URL it was enrolled at with `guidedesk-hq enroll`)
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// Seconds between relay cycles while the group HQ answers
        #[arg(long, default_value_t = 30, value_name = "SECONDS", requires = "upstream")]
        relay_interval: u64,
        /// Relay only inside this daily window, local time, e.g. 22:00-06:00 (default: whenever the group HQ answers)
        #[arg(long, value_name = "HH:MM-HH:MM", requires = "upstream")]
        relay_window: Option<guidedesk::hq::relay::outbound::RelayWindow>,
        /// Days the hub keeps ops the group HQ acknowledged (resent if the group HQ is restored from an older backup)
        #[arg(long, default_value_t = 30, value_name = "DAYS", requires = "upstream")]
        relay_retain_days: u64,
    },
    /// Enrol this HQ as a site hub at the group HQ (stop its server first); from then on it logs every op it takes
    /// for the group HQ
    Enroll {
        /// The group HQ's URL, e.g. `https://hq.group.example:8443`
        #[arg(long, value_name = "URL")]
        hq: String,
        /// The one-time code from the group HQ's `enroll-code --site SITE --hub`
        #[arg(long)]
        code: String,
        /// CA certificate(s) (PEM) to trust for the group HQ instead of the system's roots
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Allow plain HTTP to a group HQ that is not on loopback (only behind a TLS-terminating proxy)
        #[arg(long)]
        allow_plain_http: bool,
    },
    /// On a hub: relay everything to the group HQ now (works while the server runs); exits 0 only when the group
    /// HQ has acknowledged every op
    Relay,
    /// Make a one-time enrolment code for a desk or a site hub (works while the server runs); the code is the last
    /// line printed
    EnrollCode {
        /// Site code
        #[arg(long)]
        site: String,
        /// Desk code
        #[arg(long, required_unless_present = "hub", conflicts_with = "hub")]
        desk: Option<String>,
        /// A code for a site hub that relays the site's desks (`guidedesk-hq enroll` on the hub)
        #[arg(long)]
        hub: bool,
        /// Hours the code stays valid
        #[arg(long, default_value_t = DEFAULT_CODE_TTL_HOURS)]
        ttl_hours: u64,
        /// Only this enrolled device (UUID) may use the code: a new credential for it, e.g. after its disk was
        /// replaced (an enrolled device takes no other code)
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
    /// Reference data
    Ref {
        #[command(subcommand)]
        command: RefCommand,
    },
    /// Revoke a device: it keeps working locally, but HQ refuses its sync
    Revoke {
        /// Device id (UUID, as `guidedesk stats` shows it)
        #[arg(long)]
        device: String,
    },
    /// Lift a device's revocation: its credential works again (enrolment never does this)
    Reinstate {
        /// Device id (UUID)
        #[arg(long)]
        device: String,
    },
    /// List enrolled devices (JSON)
    Devices,
    /// Ops HQ would not apply (another site's record, times outside the accepted window, unknown codes)
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Record counts, devices and quarantined ops
    Stats {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// List quarantined ops with their reasons (JSON; no personal data)
    List,
    /// One quarantined op with its record (JSON; holds personal data)
    Show {
        /// Device id (UUID)
        #[arg(long)]
        device: String,
        /// The op's sequence number on that device
        #[arg(long)]
        seq: u64,
    },
    /// Apply a quarantined op without the time and code checks (the site rule still applies)
    Release {
        /// Device id (UUID)
        #[arg(long)]
        device: String,
        /// The op's sequence number on that device
        #[arg(long)]
        seq: u64,
    },
    /// Discard a quarantined op for good (HQ keeps its receipt, so the desk never sends it again)
    Drop {
        /// Device id (UUID)
        #[arg(long)]
        device: String,
        /// The op's sequence number on that device
        #[arg(long)]
        seq: u64,
    },
}

#[derive(Debug, Subcommand)]
enum RefCommand {
    /// Load reference data from a JSON file (validated) and publish it to the kiosks
    Import {
        /// The reference-data JSON document (see assets/reference/default.json)
        file: PathBuf,
        /// Publish to this site only
        #[arg(long)]
        site: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "guidedesk-hq: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn data_dir(cli: &Cli) -> Result<PathBuf> {
    cli.data_dir.clone().context("no data directory: pass --data-dir DIR or set GUIDEDESK_HQ_DATA_DIR")
}

fn pg_config(cli: &Cli) -> Option<PgConfig> {
    let url = cli.database_url.as_deref()?;
    let mut cfg = PgConfig::new(url);
    cfg.schema.clone_from(&cli.database_schema);
    cfg.max_connections = cli.db_max_connections;
    cfg.statement_timeout = std::time::Duration::from_secs(cli.db_statement_timeout.max(1));
    Some(cfg)
}

fn connect_pg(cfg: &PgConfig) -> Result<PgStore> {
    PgStore::connect(cfg).context("cannot open HQ's PostgreSQL database")
}

/// Runs an admin command: on PostgreSQL directly; on the embedded store, or through the running server when the
/// store is in use.
fn admin_call(cli: &Cli, req: &AdminRequest) -> Result<serde_json::Value> {
    if let Some(cfg) = pg_config(cli) {
        let store = HqBackend::from(connect_pg(&cfg)?);
        let v = admin::execute(&store, req, DEFAULT_CHANGELOG_KEEP)?;
        store.close();
        return Ok(v);
    }
    let dir = data_dir(cli)?;
    let dir = dir.as_path();
    match HqStore::open(dir) {
        Ok(store) => Ok(admin::execute(&HqBackend::from(store), req, DEFAULT_CHANGELOG_KEEP)?),
        Err(HqError::Locked(path)) => {
            let file = dir.join(ADMIN_FILE);
            let a = admin::read_admin_file(&file).with_context(|| {
                format!("{} is in use, but the running server's {} cannot be read", path.display(), file.display())
            })?;
            let mut cfg = ClientConfig::new(&a.url);
            cfg.token = Some(a.token);
            let t = HttpTransport::new(&cfg)?;
            let body = serde_json::to_value(req)?;
            t.post_json("/admin", &body).map_err(|e| anyhow::anyhow!("the running server refused: {e}"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses to serve as a hub of `url` unless the store was enrolled there.
fn check_upstream(store: &HqStore, url: &str) -> Result<()> {
    match outbound::Upstream::of(store)? {
        None => bail!(
            "--upstream {url}: this HQ is not enrolled there; run `guidedesk-hq enroll --hq {url} --code CODE` first"
        ),
        Some(up) if up.url != url.trim_end_matches('/') => {
            bail!("--upstream {url}: this hub is enrolled at {}, not there", up.url)
        }
        Some(_) => Ok(()),
    }
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            allow_plain_http,
            changelog_keep,
            reports_token_file,
            rate_per_second,
            rate_burst,
            request_timeout,
            max_connections,
            header_timeout,
            upstream,
            relay_interval,
            relay_window,
            relay_retain_days,
        } => {
            let (listen, allow_plain_http, changelog_keep) = (*listen, *allow_plain_http, *changelog_keep);
            let (rate_per_second, rate_burst, request_timeout) = (*rate_per_second, *rate_burst, *request_timeout);
            if tls_cert.is_none() && !allow_plain_http && !listen.ip().is_loopback() {
                // Refuse before touching the data directory or the database.
                return Err(server::ServeError::PlainHttp(listen).into());
            }
            let reports_token = match reports_token_file {
                Some(f) => {
                    guidedesk::store::crypto::check_secret_file(f)?;
                    let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
                    Some(ReportsToken::new(&text).with_context(|| format!("{}", f.display()))?)
                }
                None => None,
            };
            if !rate_per_second.is_finite() || rate_per_second < 0.0 {
                bail!("--rate-per-second must be a number of requests per second, 0 or more");
            }
            if request_timeout == 0 {
                bail!("--request-timeout must be at least 1 second");
            }
            if *header_timeout == 0 {
                bail!("--header-timeout must be at least 1 second");
            }
            if *max_connections == 0 {
                bail!("--max-connections must be at least 1");
            }
            let api = ApiOptions {
                reports_token,
                rate_limit: (rate_per_second > 0.0)
                    .then_some(RateLimit { per_second: rate_per_second, burst: rate_burst }),
                request_timeout: std::time::Duration::from_secs(request_timeout),
                max_connections: *max_connections,
                header_timeout: std::time::Duration::from_secs(*header_timeout),
                ..ApiOptions::default()
            };
            // PostgreSQL: no admin endpoint (administration goes to the database, so any number of HQ processes
            // can serve it). Embedded: the admin endpoint file in the data directory.
            if *relay_interval == 0 {
                bail!("--relay-interval must be at least 1 second");
            }
            let (store, admin_file, dir) = if let Some(cfg) = pg_config(cli) {
                if upstream.is_some() {
                    bail!("--upstream: a hub keeps its store in its data directory (not --database-url)");
                }
                (HqBackend::from(connect_pg(&cfg)?), None, None)
            } else {
                let dir = data_dir(cli)?;
                let store = HqStore::open(&dir)?;
                if let Some(url) = upstream {
                    check_upstream(&store, url)?;
                }
                (HqBackend::from(store), Some(dir.join(ADMIN_FILE)), Some(dir))
            };
            let tls = match (tls_cert.clone(), tls_key.clone()) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            };
            let backend = store.kind();
            let options = ServeOptions { listen, tls, allow_plain_http, changelog_keep, admin_file };
            let running = server::start_with(store, &options, api)?;
            eprintln!("guidedesk-hq: {backend} store");
            println!("guidedesk-hq: listening on {}", running.url());
            std::io::stdout().flush()?;
            let stop = running.stopper();
            let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let signalled = std::sync::Arc::clone(&stopping);
            std::thread::Builder::new().name("signals".into()).spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(wait_for_signal());
                    signalled.store(true, std::sync::atomic::Ordering::SeqCst);
                    stop();
                }
            })?;
            let relay = upstream.as_ref().map(|url| {
                let opts = RelayLoop {
                    interval: std::time::Duration::from_secs(*relay_interval),
                    window: *relay_window,
                    retain_ms: relay_retain_days.saturating_mul(86_400_000),
                    keep: changelog_keep,
                };
                eprintln!("guidedesk-hq: hub relaying to {url} every {relay_interval} s");
                let store = running.shared_store();
                let stopping = std::sync::Arc::clone(&stopping);
                std::thread::Builder::new().name("relay".into()).spawn(move || {
                    if let HqBackend::Embedded(s) = &*store {
                        outbound::serve_loop(s, &opts, &|| stopping.load(std::sync::atomic::Ordering::SeqCst));
                    }
                })
            });
            let relay = relay.transpose()?;
            let served = running.wait();
            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(r) = relay {
                let _ = r.join();
            }
            served?;
            if let Some(dir) = dir {
                let _ = std::fs::remove_file(dir.join(ADMIN_FILE));
            }
            eprintln!("guidedesk-hq: stopped");
        }
        Command::EnrollCode { site, desk, hub, ttl_hours, device } => {
            let ttl_hours = *ttl_hours;
            let desk = desk.clone().unwrap_or_default();
            let req = AdminRequest::EnrollCode {
                site: site.clone(),
                desk: desk.clone(),
                ttl_hours,
                device: device.clone(),
                hub: *hub,
            };
            let v = admin_call(cli, &req)?;
            let code = v["code"].as_str().context("HQ returned no code")?;
            match device {
                _ if *hub => println!("hub enrolment code for site {site}, valid for {ttl_hours} h, usable once:"),
                Some(d) => println!(
                    "enrolment code for device {d} (desk {desk} at site {site}), valid for {ttl_hours} h, usable once:"
                ),
                None => {
                    println!("enrolment code for desk {desk} at site {site}, valid for {ttl_hours} h, usable once:");
                }
            }
            println!("{code}");
        }
        Command::Enroll { hq, code, ca, allow_plain_http } => {
            if pg_config(cli).is_some() {
                bail!("enroll: a hub keeps its store in its data directory (not --database-url)");
            }
            let ca_pem = match ca {
                Some(f) => {
                    Some(std::fs::read_to_string(f).with_context(|| format!("--ca: cannot read {}", f.display()))?)
                }
                None => None,
            };
            let dir = data_dir(cli)?;
            let mut store = match HqStore::open(&dir) {
                Err(HqError::Locked(path)) => {
                    bail!(
                        "{} is in use: stop this HQ's server, enrol, then serve again with --upstream",
                        path.display()
                    )
                }
                other => other?,
            };
            let up = outbound::enroll(&mut store, hq, code, ca_pem, *allow_plain_http)?;
            println!(
                "enrolled as the hub of site {} at {} (hub id {}); serve with --upstream {}",
                up.site,
                up.url,
                uuid::Uuid::from_u128(up.hub),
                up.url
            );
        }
        Command::Relay => {
            let v = admin_call(cli, &AdminRequest::Relay)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            let pending = v["pending"].as_u64().unwrap_or(u64::MAX);
            if pending > 0 {
                bail!("{pending} op(s) are not yet acknowledged by the group HQ");
            }
        }
        Command::Ref { command: RefCommand::Import { file, site } } => {
            let json = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            // Validate here too, so a bad file is reported with its name even when the server does the import.
            guidedesk::model::ReferenceData::from_json(&json).with_context(|| format!("{}", file.display()))?;
            let v = admin_call(cli, &AdminRequest::RefImport { json, site: site.clone() })?;
            println!(
                "reference data from {} published to {} as change {}",
                file.display(),
                site.as_deref().map_or_else(|| "every site".to_string(), |s| format!("site {s}")),
                v["change_seq"]
            );
        }
        Command::Revoke { device } => {
            let v = admin_call(cli, &AdminRequest::Revoke { device: device.clone() })?;
            if v["revoked"].as_bool() != Some(true) {
                bail!("no device {device} is enrolled");
            }
            println!("device {device} revoked");
        }
        Command::Reinstate { device } => {
            let v = admin_call(cli, &AdminRequest::Reinstate { device: device.clone() })?;
            if v["reinstated"].as_bool() != Some(true) {
                bail!("no device {device} is enrolled");
            }
            println!("device {device} reinstated: its credential works again");
        }
        Command::Quarantine { command } => {
            let req = match command {
                QuarantineCommand::List => AdminRequest::QuarantineList,
                QuarantineCommand::Show { device, seq } => {
                    AdminRequest::QuarantineShow { device: device.clone(), seq: *seq }
                }
                QuarantineCommand::Release { device, seq } => {
                    AdminRequest::QuarantineRelease { device: device.clone(), seq: *seq }
                }
                QuarantineCommand::Drop { device, seq } => {
                    AdminRequest::QuarantineDrop { device: device.clone(), seq: *seq }
                }
            };
            let v = admin_call(cli, &req)?;
            match command {
                QuarantineCommand::Release { device, seq } if v["released"].as_bool() != Some(true) => {
                    bail!(
                        "op {seq} of device {device} still cannot be applied: {}",
                        v["reason"].as_str().unwrap_or("?")
                    );
                }
                QuarantineCommand::Drop { device, seq } if v["dropped"].as_bool() != Some(true) => {
                    bail!("no op {seq} of device {device} is in quarantine");
                }
                QuarantineCommand::Release { device, seq } => {
                    println!("op {seq} of device {device} released and applied");
                }
                QuarantineCommand::Drop { device, seq } => println!("op {seq} of device {device} dropped"),
                QuarantineCommand::List | QuarantineCommand::Show { .. } => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
            }
        }
        Command::Devices => {
            let v = admin_call(cli, &AdminRequest::Devices)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Stats { json } => {
            let v = admin_call(cli, &AdminRequest::Stats)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                if let Some(recs) = v["records"].as_object() {
                    for (k, n) in recs {
                        println!("{k:>14}: {n}");
                    }
                }
                println!("devices: {}", v["devices"]);
                println!("quarantined ops: {}", v["quarantined"]);
            }
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
