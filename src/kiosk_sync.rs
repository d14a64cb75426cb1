//! The kiosk's side of replication with headquarters: enrolment, one sync cycle, and the background [`SyncWorker`].
//!
//! - **Credential**: `guidedesk enroll` trades a one-time code for the kiosk's own credential and keeps it, with
//!   HQ's URL and the CA to trust, in `hq.json` in the data directory (owner-only permissions). The bearer token is
//!   sealed with the store key (`token_sealed`, associated data `hq.json token`), so the file alone does not let
//!   anyone sync as this kiosk; a file from an older version with the token in clear is sealed when it is first
//!   read. Nothing else about sync lives outside the store.
//! - **One cycle** ([`sync_once`]): push every unacknowledged op (batches of contiguous sequence numbers), then pull
//!   the reference-data stream; each pulled page is applied with its cursor in one store transaction
//!   ([`Store::apply_reference_page`]). Acknowledged ops older than the retention period are then pruned. The
//!   rules (duplicates, gaps, retries with backoff, `Retry-After`) are `guidedesk_sync::replicate`'s.
//! - **Background** ([`SyncWorker`]): a thread named `sync` runs a cycle every few minutes and once in a nightly
//!   window at a per-device moment, and on demand. The GUI reads [`SyncStatus`] (last success, records waiting,
//!   last error in plain words) and sends commands over a bounded channel; it never waits for the network.
//!
//! A revoked or unreachable HQ never stops local work: records keep going into the store and its outbox.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::FixedOffset;
use guidedesk_sync::client::{ClientConfig, HttpTransport};
use guidedesk_sync::protocol::{PullPage, codes};
use guidedesk_sync::replicate::{
    CycleOptions, CycleReport, LocalError, Outbox, PagePreparer, PullSink, RetryPolicy, SyncError, TransportError,
    run_cycle,
};
use guidedesk_sync::{DeviceId, Op};
use serde::{Deserialize, Serialize};

use crate::config::SyncConfig;
use crate::model::codec::RECORDS_STREAM;
use crate::model::{Moment, ReferenceData};
use crate::store::crypto::{self, HQ_TOKEN};
use crate::store::{RemoteApplied, Store};

mod records;
use records::{PreparedPages, decode_records};

/// The credential file's name in the data directory.
pub const CREDENTIAL_FILE: &str = "hq.json";
/// The stream of reference data.
pub const REFERENCE_STREAM: &str = "reference";
/// Records of the other desks per pull page (HQ's largest, `hq::feed::MAX_FEED_PAGE`): a new desk takes in a
/// site's year in a few dozen requests, well inside HQ's per-device rate limit.
pub const RECORDS_PAGE: u32 = 5_000;
/// Records applied together from which a pull counts as a catch-up (`Store::apply_remote_catch_up`) and the
/// status line says how far through the site's feed the desk is.
pub const CATCH_UP_RECORDS: usize = 1_000;

/// What the kiosk needs to talk to HQ, stored in `hq.json` (the token sealed with the store key).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// HQ's base URL.
    pub url: String,
    /// The kiosk's bearer credential (in memory only; `hq.json` holds it sealed).
    pub token: String,
    /// The device id the credential belongs to (the store's).
    pub device: String,
    /// Site.
    pub site: String,
    /// Desk.
    pub desk: String,
    /// CA certificate (PEM) to trust for HQ, instead of the system roots.
    pub ca_pem: Option<String>,
    /// Plain HTTP to a non-loopback HQ was explicitly allowed at enrolment.
    pub allow_plain_http: bool,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("url", &self.url)
            .field("token", &"…")
            .field("device", &self.device)
            .field("site", &self.site)
            .field("desk", &self.desk)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish_non_exhaustive()
    }
}

/// `hq.json` as stored. `token` is only ever read (files written before the token was sealed).
#[derive(Default, Serialize, Deserialize)]
struct CredentialFile {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// Hex of the token sealed with the store key (`crypto::HQ_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_sealed: Option<String>,
    /// The token sealed with the next key while a key rotation is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_sealed_next: Option<String>,
    device: String,
    site: String,
    desk: String,
    #[serde(default)]
    ca_pem: Option<String>,
    #[serde(default)]
    allow_plain_http: bool,
}

impl Credential {
    /// Loads `hq.json` from the data directory, opening the token with the store's key; `None` when the kiosk is
    /// not enrolled. A file from an older version with the token in clear is rewritten with the token sealed.
    pub fn load(store: &Store, data_dir: &Path) -> Result<Option<Credential>, KioskSyncError> {
        let path = data_dir.join(CREDENTIAL_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => zeroize::Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(KioskSyncError::Credential(format!("cannot read {}: {e}", path.display()))),
        };
        let damaged =
            |why: &dyn std::fmt::Display| KioskSyncError::Credential(format!("{} is damaged: {why}", path.display()));
        let file: CredentialFile = serde_json::from_slice(&bytes).map_err(|e| damaged(&e))?;
        let key_id = store.key_id();
        let sealed = |hex: &Option<String>| {
            hex.as_deref().and_then(crypto::unhex).filter(|b| crypto::sealed_key_id(b) == Some(key_id))
        };
        let (token, rewrite) = if let Some(b) = sealed(&file.token_sealed) {
            (open_token(store, &b, &path)?, false)
        } else if let Some(b) = sealed(&file.token_sealed_next) {
            // A key rotation replaced the key but did not get to tidy this file: finish it.
            (open_token(store, &b, &path)?, true)
        } else if let Some(t) = file.token.clone().filter(|_| file.token_sealed.is_none()) {
            // Written by a version that kept the token in clear: seal it now.
            (t, true)
        } else if file.token_sealed.is_some() {
            return Err(KioskSyncError::Credential(format!(
                "the credential in {} is sealed with another store key than this store's ({key_id:08x}); \
                 enrol this kiosk again",
                path.display()
            )));
        } else {
            return Err(damaged(&"it holds no credential"));
        };
        let cred = Credential {
            url: file.url,
            token,
            device: file.device,
            site: file.site,
            desk: file.desk,
            ca_pem: file.ca_pem,
            allow_plain_http: file.allow_plain_http,
        };
        if rewrite {
            cred.save(store, data_dir)?;
        }
        Ok(Some(cred))
    }

    /// Writes `hq.json` atomically, readable by the owner only, with the token sealed with the store's key.
    pub fn save(&self, store: &Store, data_dir: &Path) -> Result<PathBuf, KioskSyncError> {
        let path = data_dir.join(CREDENTIAL_FILE);
        let sealed = store.seal_value(HQ_TOKEN.place, self.token.as_bytes())?;
        let file = CredentialFile {
            url: self.url.clone(),
            token_sealed: Some(crypto::hex(&sealed)),
            device: self.device.clone(),
            site: self.site.clone(),
            desk: self.desk.clone(),
            ca_pem: self.ca_pem.clone(),
            allow_plain_http: self.allow_plain_http,
            ..CredentialFile::default()
        };
        let body = serde_json::to_vec_pretty(&file).map_err(|e| KioskSyncError::Credential(e.to_string()))?;
        crypto::write_private_file(&path, &body)
            .map_err(|e| KioskSyncError::Credential(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }
}

/// Opens the sealed token of `hq.json`.
fn open_token(store: &Store, sealed: &[u8], path: &Path) -> Result<String, KioskSyncError> {
    let plain = store.open_value(HQ_TOKEN.place, sealed).map_err(|e| {
        KioskSyncError::Credential(format!(
            "the credential in {} cannot be opened: {e}; enrol this kiosk again",
            path.display()
        ))
    })?;
    String::from_utf8(plain).map_err(|_| {
        KioskSyncError::Credential(format!("the credential in {} is not text; enrol this kiosk again", path.display()))
    })
}

/// Why sync did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KioskSyncError {
    /// The kiosk has no credential.
    #[error("this kiosk is not enrolled with HQ; run `guidedesk enroll --hq URL --code CODE`")]
    NotEnrolled,
    /// The credential file is unusable.
    #[error("{0}")]
    Credential(String),
    /// The credential belongs to another store.
    #[error("hq.json belongs to device {credential}, but this store is device {store}; enrol this store again")]
    WrongDevice {
        /// Device in the credential.
        credential: String,
        /// Device of the store.
        store: String,
    },
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Client(#[from] guidedesk_sync::client::ClientError),
    /// The cycle failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Enrolment was refused or failed.
    #[error("enrolment failed: {0}")]
    Enroll(TransportError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl KioskSyncError {
    /// Whether HQ refused this kiosk's credential (revoked or unknown).
    pub fn is_revoked(&self) -> bool {
        matches!(self, KioskSyncError::Sync(SyncError::Transport(t)) if t.is_code(codes::DEVICE_REVOKED) || t.is_code(codes::UNAUTHORIZED))
    }

    /// The error in plain words for the status bar.
    pub fn plain_words(&self) -> String {
        match self {
            KioskSyncError::NotEnrolled => "Not connected to HQ yet: this kiosk has not been enrolled.".into(),
            KioskSyncError::Sync(SyncError::Transport(TransportError::Retryable { .. })) => {
                "HQ cannot be reached right now. Records are kept on this kiosk and will be sent later.".into()
            }
            e if e.is_revoked() => "HQ no longer accepts this kiosk (revoked). Work goes on locally and every \
                                    record is kept; ask HQ for a new enrolment code."
                .into(),
            KioskSyncError::Sync(SyncError::Local(e)) => format!("This kiosk's store failed during sync: {e}"),
            KioskSyncError::Store(e) => format!("This kiosk's store failed during sync: {e}"),
            other => format!("Sync failed: {other}"),
        }
    }
}

/// Tunables of one cycle.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Ops per push batch.
    pub batch: usize,
    /// Retries of transient failures within the cycle.
    pub retry: RetryPolicy,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Acknowledged ops older than this are pruned after a successful cycle.
    pub retain_acked: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self::from_config(&SyncConfig::default())
    }
}

impl SyncOptions {
    /// Options from the `[sync]` configuration.
    pub fn from_config(c: &SyncConfig) -> Self {
        Self {
            batch: c.batch_size as usize,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(u64::from(c.timeout_secs)),
            retain_acked: Duration::from_secs(u64::from(c.retain_acked_days) * 86_400),
        }
    }
}

/// Told after each page of the records stream: what it did, and how many records could not be read.
pub type RecordsProgress<'a> = &'a dyn Fn(&RemoteApplied, u64);

/// The store seen as an outbox and a pull sink.
struct StoreSide<'a> {
    store: &'a Store,
    progress: Option<RecordsProgress<'a>>,
    prepared: PreparedPages<'a>,
}

fn boxed(e: crate::store::StoreError) -> LocalError {
    Box::new(e)
}

impl Outbox for StoreSide<'_> {
    fn device(&self) -> DeviceId {
        self.store.device()
    }
    fn acked(&self) -> Result<u64, LocalError> {
        Ok(self.store.stats().map_err(boxed)?.outbox_acked_seq)
    }
    fn last_seq(&self) -> Result<u64, LocalError> {
        Ok(self.store.stats().map_err(boxed)?.outbox_last_seq)
    }
    fn ops_after(&self, after: u64, limit: usize) -> Result<Vec<Op>, LocalError> {
        self.store.outbox_after(after, limit).map_err(boxed)
    }
    fn ack(&self, seq: u64) -> Result<(), LocalError> {
        self.store.ack_through(seq).map_err(boxed)
    }
    fn now_ms(&self) -> u64 {
        self.store.now().0.max(0) as u64
    }
    fn restored_through(&self) -> Result<Option<u64>, LocalError> {
        self.store.restored_through().map_err(boxed)
    }
    fn resume_after_restore(&self, hq_cursor: u64) -> Result<(), LocalError> {
        self.store.resume_after_restore(hq_cursor).map(|_| ()).map_err(boxed)
    }
}

impl PullSink for StoreSide<'_> {
    fn cursor(&self, stream: &str) -> Result<u64, LocalError> {
        self.store.pull_cursor(stream).map_err(boxed)
    }

    fn apply(&self, stream: &str, page: &PullPage) -> Result<(), LocalError> {
        if stream == RECORDS_STREAM {
            return self.apply_records(stream, std::slice::from_ref(page));
        }
        if stream != REFERENCE_STREAM {
            return Err(format!("no local home for stream {stream:?}").into());
        }
        // Every change of the reference stream is a whole snapshot; the latest one (in HQ's commit order) wins.
        let latest = match page {
            PullPage::Changes { changes, .. } => changes.iter().rev().find_map(|c| c.value.as_ref()),
            PullPage::Reset { snapshot, .. } => snapshot.iter().max_by_key(|c| c.seq).and_then(|c| c.value.as_ref()),
        };
        let data = latest
            .map(|bytes| serde_json::from_slice::<ReferenceData>(bytes))
            .transpose()
            .map_err(|e| format!("reference data from HQ cannot be read by this version: {e}"))?;
        self.store.apply_reference_page(data, "hq", stream, page.cursor()).map_err(boxed)
    }

    fn apply_many(&self, stream: &str, pages: &[PullPage]) -> Result<(), LocalError> {
        if stream == RECORDS_STREAM {
            return self.apply_records(stream, pages);
        }
        pages.iter().try_for_each(|page| self.apply(stream, page))
    }

    fn preparer(&self) -> Option<&(dyn PagePreparer + Sync)> {
        Some(&self.prepared)
    }
}

impl StoreSide<'_> {
    /// Applies consecutive pages of the records stream (other desks' records, relayed by HQ) with the last page's
    /// cursor, in one transaction. Pages the read-ahead thread prepared are taken as they are; the others are
    /// decoded here.
    fn apply_records(&self, stream: &str, pages: &[PullPage]) -> Result<(), LocalError> {
        let Some(last) = pages.last() else { return Ok(()) };
        let mut records = Vec::new();
        let mut skipped = 0u64;
        for page in pages {
            let decoded = match self.prepared.take(page) {
                Some(d) => d?,
                None => decode_records(self.store, page, false)?,
            };
            records.extend(decoded.records);
            skipped += decoded.skipped;
        }
        // A run of full pages is a catch-up (a new desk, or one back after days away): its phone and name index
        // entries go into their tables in key order when the run ends (`Store::settle_blind_backlog`).
        let applied = if pages.len() > 1 || records.len() >= CATCH_UP_RECORDS {
            self.store.apply_remote_catch_up(&records, stream, last.cursor())
        } else {
            self.store.apply_remote_page(&records, stream, last.cursor())
        }
        .map_err(boxed)?;
        if let Some(progress) = self.progress {
            progress(&applied, skipped);
        }
        Ok(())
    }
}

fn transport(cred: &Credential, options: &SyncOptions) -> Result<HttpTransport, KioskSyncError> {
    let mut cfg = ClientConfig::new(&cred.url);
    cfg.token = Some(cred.token.clone());
    cfg.ca_pem = cred.ca_pem.as_ref().map(|p| p.as_bytes().to_vec());
    cfg.allow_plain_http = cred.allow_plain_http;
    cfg.timeout = options.timeout;
    cfg.connect_timeout = options.connect_timeout;
    Ok(HttpTransport::new(&cfg)?)
}

fn device_string(d: DeviceId) -> String {
    uuid::Uuid::from_u128(d.0).to_string()
}

/// Enrols the kiosk with HQ using a one-time code and stores the credential. `ca_pem` is the CA to trust.
pub fn enroll(
    store: &Store,
    data_dir: &Path,
    url: &str,
    code: &str,
    ca_pem: Option<String>,
    allow_plain_http: bool,
) -> Result<(Credential, PathBuf), KioskSyncError> {
    let mut cfg = ClientConfig::new(url);
    cfg.ca_pem = ca_pem.as_ref().map(|p| p.as_bytes().to_vec());
    cfg.allow_plain_http = allow_plain_http;
    let t = HttpTransport::new(&cfg)?;
    let device = device_string(store.device());
    let resp = t.enroll(code, &device).map_err(KioskSyncError::Enroll)?;
    let cred = Credential {
        url: url.trim_end_matches('/').to_string(),
        token: resp.token,
        device,
        site: resp.site,
        desk: resp.desk,
        ca_pem,
        allow_plain_http,
    };
    let path = cred.save(store, data_dir)?;
    Ok((cred, path))
}

/// Runs one full push + pull cycle with a credential, then prunes acknowledged ops past the retention period.
pub fn sync_with(store: &Store, cred: &Credential, options: &SyncOptions) -> Result<CycleReport, KioskSyncError> {
    sync_with_progress(store, cred, options, None)
}

/// [`sync_with`], telling `progress` after each page of other desks' records (a new desk's first pull can be
/// hundreds of thousands of records).
pub fn sync_with_progress(
    store: &Store,
    cred: &Credential,
    options: &SyncOptions,
    progress: Option<RecordsProgress<'_>>,
) -> Result<CycleReport, KioskSyncError> {
    let device = device_string(store.device());
    if cred.device != device {
        return Err(KioskSyncError::WrongDevice { credential: cred.device.clone(), store: device });
    }
    let t = transport(cred, options)?.with_outbox_head(store.stats()?.outbox_last_seq);
    let side = StoreSide { store, progress, prepared: PreparedPages::new(store) };
    let cycle = CycleOptions {
        batch: options.batch.max(1),
        pull_limit: 20,
        // Reference data first: the sharing policy that decides what of the records this desk keeps comes with it.
        streams: vec![REFERENCE_STREAM.to_string(), RECORDS_STREAM.to_string()],
        stream_limits: vec![(RECORDS_STREAM.to_string(), RECORDS_PAGE)],
        retry: options.retry.clone(),
    };
    let report = run_cycle(&t, &side, &side, &cycle, &std::thread::sleep);
    // A catch-up's phone and name entries go into their tables now, whether or not the cycle finished.
    store.settle_blind_backlog()?;
    let report = report?;
    let retain = i64::try_from(options.retain_acked.as_millis()).unwrap_or(i64::MAX);
    store.prune_acked(retain)?;
    // Records past retention can go now that HQ has acknowledged them (never before: see store::retention), and
    // other desks' records past the sharing policy: once a day, or when the policies change.
    store.routine_purges()?;
    Ok(report)
}

/// Runs one cycle with the credential stored in the data directory.
pub fn sync_once(store: &Store, data_dir: &Path, options: &SyncOptions) -> Result<CycleReport, KioskSyncError> {
    let cred = Credential::load(store, data_dir)?.ok_or(KioskSyncError::NotEnrolled)?;
    sync_with(store, &cred, options)
}

/// What the GUI shows about sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Whether the kiosk has a credential.
    pub enrolled: bool,
    /// Whether a cycle is running now.
    pub running: bool,
    /// When the last cycle succeeded.
    pub last_success: Option<Moment>,
    /// When the last cycle started.
    pub last_attempt: Option<Moment>,
    /// Records (ops) written but not yet acknowledged by HQ.
    pub records_waiting: u64,
    /// The last error in plain words (cleared by a success).
    pub last_error: Option<String>,
    /// HQ refused the credential: sync is paused until the kiosk is enrolled again.
    pub revoked: bool,
    /// HQ's clock minus this kiosk's clock at the last exchange (ms).
    pub hq_offset_ms: Option<i64>,
    /// When the next cycle is planned.
    pub next_run: Option<Moment>,
    /// Records other desks wrote or changed that this desk took in since it started (screens showing records
    /// refresh when it moves).
    pub remote_changes: u64,
    /// The last of them: (kind, id, desk it came from).
    pub last_remote: Option<(crate::model::RecordKind, crate::model::RecordId, String)>,
    /// While a cycle takes in a long run of other desks' records (a new desk's first sync, a desk back after days
    /// offline): records received so far and how far through the site's feed it is, in thousandths.
    pub catching_up: Option<(u64, u16)>,
}

enum Command {
    SyncNow,
    Shutdown,
}

/// The background sync thread. Dropping it stops the thread (after the cycle in progress, if any).
pub struct SyncWorker {
    commands: SyncSender<Command>,
    status: Arc<Mutex<SyncStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
    done: Receiver<()>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    live: bool,
}

/// How long [`SyncWorker::shutdown`] waits for a cycle in progress before leaving the thread to finish on its own
/// (every store write it makes is a complete transaction, so stopping the process meanwhile loses nothing).
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

impl std::fmt::Debug for SyncWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWorker").field("status", &self.status()).finish_non_exhaustive()
    }
}

/// The moment of the next nightly sync after `now`: the window's start (minutes after local midnight) plus this
/// device's fixed offset within the window, so kiosks do not all call HQ at the same minute.
pub fn next_nightly(now: Moment, offset: FixedOffset, start_min: u32, window_min: u32, device: DeviceId) -> Moment {
    let jitter_min = if window_min == 0 {
        0
    } else {
        (device.node().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 33) % u64::from(window_min)
    };
    let at_min = i64::from(start_min) + i64::try_from(jitter_min).unwrap_or(0);
    let today = now.local_date(offset);
    let mut day = today.pred_opt().unwrap_or(today);
    loop {
        let candidate = Moment::start_of_day(day, offset).plus_millis(at_min * 60_000);
        if candidate > now {
            return candidate;
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => return now.plus_millis(86_400_000),
        }
    }
}

impl SyncWorker {
    /// Starts the `sync` thread. `notify` is called (from that thread) whenever the status changes — the GUI passes
    /// a closure that calls `egui::Context::request_repaint`.
    pub fn spawn(
        store: Arc<Store>,
        data_dir: PathBuf,
        config: &SyncConfig,
        notify: Box<dyn Fn() + Send>,
    ) -> std::io::Result<SyncWorker> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (done_tx, done) = std::sync::mpsc::sync_channel(1);
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker_stopping = Arc::clone(&stopping);
        let status = Arc::new(Mutex::new(SyncStatus::default()));
        let worker_status = Arc::clone(&status);
        let mut options = SyncOptions::from_config(config);
        // The worker retries on its own schedule; within one cycle it gives up quickly so the GUI can close promptly.
        options.retry = RetryPolicy { attempts: 2, base: Duration::from_secs(1), cap: Duration::from_secs(5) };
        options.connect_timeout = Duration::from_secs(5);
        let interval = Duration::from_secs(u64::from(config.interval_minutes.max(1)) * 60);
        let nightly = config.nightly().unwrap_or((120, 120));
        let live = Arc::new(Live::default());
        if config.live {
            let (live, stopping, commands) = (Arc::clone(&live), Arc::clone(&stopping), tx.clone());
            let options = options.clone();
            std::thread::Builder::new()
                .name("sync-watch".into())
                .spawn(move || watch_loop(&live, &stopping, &commands, &options))?;
        }
        let thread = std::thread::Builder::new().name("sync".into()).spawn(move || {
            let w = Loop {
                store,
                data_dir,
                options,
                interval,
                nightly,
                status: worker_status,
                notify,
                stopping: worker_stopping,
                live,
            };
            w.run(&rx);
            let _ = done_tx.send(());
        })?;
        Ok(SyncWorker { commands: tx, status, thread: Some(thread), done, stopping, live: config.live })
    }

    /// The current status (cheap; never blocks on the network).
    pub fn status(&self) -> SyncStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether the worker syncs live (a long poll at HQ, and a cycle after each save).
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Asks for a cycle now. Returns `false` if requests are already queued.
    pub fn sync_now(&self) -> bool {
        !matches!(self.commands.try_send(Command::SyncNow), Err(TrySendError::Full(_) | TrySendError::Disconnected(_)))
    }

    /// Stops the thread: waits for it up to [`SHUTDOWN_WAIT`] (a cycle in progress finishes its current request).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Never block on a full queue: the flag is seen after whatever command the thread takes next.
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.commands.try_send(Command::Shutdown);
        if let Some(t) = self.thread.take()
            && self.done.recv_timeout(SHUTDOWN_WAIT).is_ok()
        {
            let _ = t.join();
        }
    }
}

impl Drop for SyncWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Loop {
    store: Arc<Store>,
    data_dir: PathBuf,
    options: SyncOptions,
    interval: Duration,
    nightly: (u32, u32),
    status: Arc<Mutex<SyncStatus>>,
    notify: Box<dyn Fn() + Send>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    live: Arc<Live>,
}

/// What the watcher thread needs from the sync thread: the credential (once loaded) and the records cursor. The
/// watcher holds no store, so a long poll in flight never keeps the store open after the worker stops.
#[derive(Default)]
struct Live {
    cred: Mutex<Option<Credential>>,
    cursor: std::sync::atomic::AtomicU64,
    /// The site's feed head as HQ last told the watcher.
    head: std::sync::atomic::AtomicU64,
}

/// How long one watch may wait at HQ.
const WATCH_WAIT: Duration = Duration::from_secs(15);

/// The watcher thread: keeps one long poll open at HQ and asks for a cycle as soon as the site has records this
/// desk has not pulled. Failures wait 2 s, doubling to a minute; the interval and nightly cycles go on regardless.
fn watch_loop(
    live: &Live,
    stopping: &std::sync::atomic::AtomicBool,
    commands: &SyncSender<Command>,
    options: &SyncOptions,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let mut pause = Duration::from_secs(2);
    let nap = |d: Duration| {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until && !stopping.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut client: Option<(String, HttpTransport)> = None;
    while !stopping.load(SeqCst) {
        let cred = live.cred.lock().ok().and_then(|c| c.clone());
        let Some(cred) = cred else {
            nap(Duration::from_secs(1));
            continue;
        };
        if client.as_ref().is_none_or(|(token, _)| *token != cred.token) {
            if let Ok(t) = transport(&cred, options) {
                client = Some((cred.token.clone(), t));
            } else {
                nap(Duration::from_mins(1));
                continue;
            }
        }
        let Some((_, t)) = &client else { continue };
        let cursor = live.cursor.load(SeqCst);
        let answer = t.watch(cursor, WATCH_WAIT);
        if let Ok(head) = answer {
            live.head.store(head, SeqCst);
        }
        match answer {
            Ok(head) if head > cursor => {
                pause = Duration::from_secs(2);
                if matches!(commands.try_send(Command::SyncNow), Err(TrySendError::Disconnected(_))) {
                    return;
                }
                // Give the cycle a moment to move the cursor before watching again.
                let until = std::time::Instant::now() + Duration::from_secs(3);
                while live.cursor.load(SeqCst) < head && std::time::Instant::now() < until && !stopping.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Ok(_) => pause = Duration::from_secs(2),
            Err(_) => {
                nap(pause);
                pause = (pause * 2).min(Duration::from_mins(1));
            }
        }
    }
}

impl Loop {
    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
        (self.notify)();
    }

    fn waiting(&self) -> u64 {
        self.store.stats().map_or(0, |s| s.outbox_pending)
    }

    fn run(&self, rx: &Receiver<Command>) {
        let device = self.store.device();
        let mut backoff = guidedesk_sync::backoff::Backoff::new(Duration::from_secs(15), self.interval, device.node());
        let mut delay = Duration::from_secs(5);
        loop {
            let now = self.store.now();
            let nightly = next_nightly(now, self.store.utc_offset(), self.nightly.0, self.nightly.1, device);
            let until_nightly = Duration::from_millis(nightly.millis_since(now).max(0) as u64);
            let wait = delay.min(until_nightly);
            let next = now.plus_millis(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
            let waiting = self.waiting();
            self.update(|s| {
                s.next_run = Some(next);
                s.records_waiting = waiting;
            });
            match rx.recv_timeout(wait) {
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Command::SyncNow) | Err(RecvTimeoutError::Timeout) => {}
            }
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let cred = match Credential::load(&self.store, &self.data_dir) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    self.update(|s| {
                        s.enrolled = false;
                        s.last_error = Some(KioskSyncError::NotEnrolled.plain_words());
                    });
                    delay = self.interval;
                    continue;
                }
                Err(e) => {
                    self.update(|s| s.last_error = Some(e.plain_words()));
                    delay = self.interval;
                    continue;
                }
            };
            if let Ok(mut c) = self.live.cred.lock()
                && c.as_ref() != Some(&cred)
            {
                *c = Some(cred.clone());
            }
            self.update(|s| {
                s.enrolled = true;
                s.running = true;
                s.last_attempt = Some(self.store.now());
            });
            let received = std::cell::Cell::new(0u64);
            let progress = |a: &RemoteApplied, _unreadable: u64| {
                received.set(received.get() + a.received);
                // A long run of pages: say how far through the site's feed this desk is.
                if received.get() >= CATCH_UP_RECORDS as u64 {
                    let head = self.live.head.load(std::sync::atomic::Ordering::SeqCst);
                    let cursor = self.store.pull_cursor(RECORDS_STREAM).unwrap_or(0);
                    let done = if head > 0 {
                        u16::try_from((u128::from(cursor.min(head)) * 1000 / u128::from(head)).min(1000))
                            .unwrap_or(1000)
                    } else {
                        0
                    };
                    if let Ok(mut st) = self.status.lock() {
                        st.catching_up = Some((received.get(), done));
                    }
                    (self.notify)();
                }
                let changed = (a.new + a.merged) as usize;
                if changed == 0 {
                    return;
                }
                if let Ok(mut st) = self.status.lock() {
                    st.remote_changes += changed as u64;
                    st.last_remote = a.changed.last().cloned();
                }
                (self.notify)();
            };
            let result = sync_with_progress(&self.store, &cred, &self.options, Some(&progress));
            self.update(|s| s.catching_up = None);
            if let Ok(c) = self.store.pull_cursor(RECORDS_STREAM) {
                self.live.cursor.store(c, std::sync::atomic::Ordering::SeqCst);
            }
            let waiting = self.waiting();
            match result {
                Ok(report) => {
                    backoff.reset();
                    delay = self.interval;
                    self.update(|s| {
                        s.running = false;
                        s.revoked = false;
                        s.last_success = Some(self.store.now());
                        s.last_error = None;
                        s.records_waiting = waiting;
                        s.hq_offset_ms = report.hq_offset_ms;
                    });
                }
                Err(e) => {
                    let revoked = e.is_revoked();
                    // A refused credential will not get better by retrying soon: try again at the usual pace.
                    delay = if revoked { self.interval } else { backoff.next_delay(None) };
                    self.update(|s| {
                        s.running = false;
                        s.revoked = revoked;
                        s.last_error = Some(e.plain_words());
                        s.records_waiting = waiting;
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nightly_moment_is_in_the_window_and_differs_per_device() {
        let offset = FixedOffset::east_opt(8 * 3600).unwrap();
        // 2026-03-01 12:00 local.
        let now = Moment::start_of_day(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), offset)
            .plus_millis(12 * 3_600_000);
        let mut moments = std::collections::BTreeSet::new();
        for d in 0..20u128 {
            let m = next_nightly(now, offset, 120, 120, DeviceId(d * 7919 + 1));
            assert!(m > now);
            let local = m.local(offset);
            let minutes = chrono::Timelike::hour(&local) * 60 + chrono::Timelike::minute(&local);
            assert!((120..240).contains(&minutes), "{local}");
            assert_eq!(local.date_naive(), chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
            moments.insert(m);
        }
        assert!(moments.len() > 10);
        // Just before the window, the same night.
        let early = now.plus_millis(-11 * 3_600_000);
        let m = next_nightly(early, offset, 120, 120, DeviceId(1));
        assert_eq!(m.local_date(offset), chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    }

    fn cred(store: &Store) -> Credential {
        Credential {
            url: "https://hq.example:8443".into(),
            token: "kiosk-bearer-credential-0123456789".into(),
            device: device_string(store.device()),
            site: "main".into(),
            desk: "d1".into(),
            ca_pem: None,
            allow_plain_http: false,
        }
    }

    #[test]
    fn hq_json_holds_the_token_sealed_and_old_clear_files_are_sealed_on_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = cred(&store);
        assert!(!format!("{c:?}").contains(&c.token));
        let path = c.save(&store, dir.path()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&c.token) && text.contains("\"token_sealed\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(Credential::load(&store, dir.path()).unwrap(), Some(c.clone()));

        // Written by an older version: the token in clear. It loads, and the file is rewritten sealed.
        let old = serde_json::json!({
            "url": c.url, "token": c.token, "device": c.device, "site": "main", "desk": "d1", "ca_pem": null,
            "allow_plain_http": false,
        });
        std::fs::write(&path, old.to_string()).unwrap();
        assert_eq!(Credential::load(&store, dir.path()).unwrap(), Some(c.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&c.token) && text.contains("token_sealed"), "{text}");

        // A copy moved to another store is refused by name, without the token.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Store::open(other_dir.path()).unwrap();
        std::fs::copy(&path, other_dir.path().join(CREDENTIAL_FILE)).unwrap();
        let e = Credential::load(&other, other_dir.path()).unwrap_err().to_string();
        assert!(e.contains("another store key") && e.contains("enrol") && !e.contains(&c.token), "{e}");
        // A damaged or empty file is named too.
        std::fs::write(&path, "{\"url\": \"x\", \"device\": \"d\", \"site\": \"s\", \"desk\": \"d\"}").unwrap();
        assert!(Credential::load(&store, dir.path()).unwrap_err().to_string().contains("holds no credential"));
        std::fs::write(&path, "").unwrap();
        assert!(Credential::load(&store, dir.path()).unwrap_err().to_string().contains("is damaged"));
    }

    #[test]
    fn a_rotation_interrupted_after_its_commit_leaves_a_credential_that_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = cred(&store);
        let path = c.save(&store, dir.path()).unwrap();
        store.rotate_key().unwrap();
        // As if the rotation had stopped before tidying hq.json: the value for the new key under `next`.
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let sealed = doc["token_sealed"].clone();
        doc["token_sealed_next"] = sealed;
        doc["token_sealed"] = "e5".into();
        std::fs::write(&path, doc.to_string()).unwrap();
        assert_eq!(Credential::load(&store, dir.path()).unwrap(), Some(c));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(doc.get("token_sealed_next").is_none(), "{doc}");
    }

    #[test]
    fn plain_words_for_common_failures() {
        let e = KioskSyncError::Sync(SyncError::Transport(TransportError::Retryable {
            message: "x".into(),
            retry_after: None,
        }));
        assert!(e.plain_words().contains("cannot be reached"));
        let e = KioskSyncError::Sync(SyncError::Transport(TransportError::Rejected {
            status: 403,
            code: codes::DEVICE_REVOKED.into(),
            message: "revoked".into(),
        }));
        assert!(e.is_revoked());
        assert!(e.plain_words().contains("revoked"));
    }
}
