//! The alternatives measured beside GuideDesk in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use guidedesk::command::calls::outpatient_plan;
use guidedesk::model::{
    Arrival, FollowupStatus, FollowupTask, Lww, Moment, RECORD_SCHEMA, RecordId, RecordKind, ReferenceData, StaffRef,
};
use guidedesk::store::crypto::{Keys, StoreKey, outbox_place, record_place};
use guidedesk::store::{china_offset, day_number};
use guidedesk_sync::{Hlc, HlcClock, Op, RecordKey, codec};
use rusqlite::{Connection, params};

use crate::fixtures;

/// `SQLite` doing the same registration as the kiosk store: the form validated by the same code, the record encoded
/// by the same codec and sealed by the same cipher (`Keys::seal`, a fresh nonce each), and in one transaction the
/// record row, its index rows keyed like the redb ones (time, day+step, the blind phone key, one blind key per name
/// prefix as `Keys::name_prefixes` makes them), the sealed outbox row and the clock/sequence counters. When the
/// follow-up rule calls for a task (`guidedesk::command::calls::outpatient_plan`: a first visit with a phone), the
/// same transaction also writes the task as `guidedesk::command::desk::register` does: its sealed row, its index
/// rows (time, blind phone, blind name prefixes, open-by-due-day, blind source key, unique like the store's) and
/// its sealed outbox row. WAL mode, `synchronous=FULL`, each index a `WITHOUT ROWID` table.
pub struct Sqlite {
    conn: Connection,
    clock: HlcClock,
    next_seq: u64,
    refs: Arc<ReferenceData>,
    keys: Keys,
}

impl Sqlite {
    pub fn open(dir: &Path, refs: Arc<ReferenceData>) -> Result<Sqlite> {
        let conn = Connection::open(dir.join("bench.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS rec_arrival(id BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS rec_followup_task(id BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY, op BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx_time(kind INTEGER, ms INTEGER, id BLOB, PRIMARY KEY(kind, ms, id))
               WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx_day_step(day INTEGER, step INTEGER, id BLOB, PRIMARY KEY(day, step, id))
               WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx_phone(phone TEXT, kind INTEGER, id BLOB, PRIMARY KEY(phone, kind, id))
               WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx_name(name TEXT, kind INTEGER, id BLOB, PRIMARY KEY(name, kind, id))
               WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx_followup_open_due(day INTEGER, id BLOB, PRIMARY KEY(day, id))
               WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS idx_followup_source(source TEXT PRIMARY KEY, id BLOB NOT NULL)
               WITHOUT ROWID;",
        )?;
        let keys = StoreKey::generate()?.derive();
        Ok(Sqlite { conn, clock: HlcClock::resume(1, Hlc::ZERO), next_seq: 1, refs, keys })
    }

    /// Registers arrival `i` at `at` (ms) in one durable transaction.
    pub fn register(&mut self, i: u64, at: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        register_rows(&tx, &self.refs, &self.keys, &mut self.clock, &mut self.next_seq, i, at)?;
        tx.commit()?;
        Ok(())
    }

    /// Fills the database with `total` arrivals in one transaction (setup, not measured).
    pub fn seed(&mut self, total: u64) -> Result<()> {
        let tx = self.conn.transaction()?;
        for i in 0..total {
            let at = fixtures::NOW - 86_400_000 * (1 + (total - i) as i64 / 500);
            register_rows(&tx, &self.refs, &self.keys, &mut self.clock, &mut self.next_seq, i, at)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn register_rows(
    tx: &rusqlite::Transaction<'_>,
    refs: &ReferenceData,
    keys: &Keys,
    clock: &mut HlcClock,
    next_seq: &mut u64,
    i: u64,
    at: i64,
) -> Result<()> {
    let reg = registration(refs, keys, clock, next_seq, i, at)?;
    let a = &reg.arrival;
    let kind = RecordKind::Arrival.code();
    let id = reg.arrival_rec.id.to_be_bytes();
    let day = day_number(a.arrived_at.local_date(china_offset()));
    tx.prepare_cached("INSERT INTO rec_arrival(id, body) VALUES (?1, ?2)")?
        .execute(params![&id[..], reg.arrival_rec.stored])?;
    tx.prepare_cached("INSERT INTO idx_time VALUES (?1, ?2, ?3)")?.execute(params![kind, at, &id[..]])?;
    tx.prepare_cached("INSERT INTO idx_day_step VALUES (?1, ?2, ?3)")?.execute(params![
        day,
        a.step().code(),
        &id[..]
    ])?;
    person_rows(tx, keys, kind, &id, &a.name, a.phone.as_deref())?;
    outbox_row(tx, &reg.arrival_rec)?;
    if let Some((task, rec)) = &reg.followup {
        let kind = RecordKind::FollowupTask.code();
        let id = rec.id.to_be_bytes();
        tx.prepare_cached("INSERT INTO rec_followup_task(id, body) VALUES (?1, ?2)")?
            .execute(params![&id[..], rec.stored])?;
        tx.prepare_cached("INSERT INTO idx_time VALUES (?1, ?2, ?3)")?.execute(params![
            kind,
            task.created_at.0,
            &id[..]
        ])?;
        person_rows(tx, keys, kind, &id, &task.patient_name, Some(&task.phone))?;
        tx.prepare_cached("INSERT INTO idx_followup_open_due VALUES (?1, ?2)")?
            .execute(params![day_number(task.due_from), &id[..]])?;
        // A plain INSERT on the primary key: a second task for the same source is refused, as the store refuses it.
        let source = keys.blind("source", &task.source.dedup_key());
        tx.prepare_cached("INSERT INTO idx_followup_source VALUES (?1, ?2)")?.execute(params![source, &id[..]])?;
        outbox_row(tx, rec)?;
    }
    let hlc = codec::encode(&clock.last())?;
    tx.prepare_cached("INSERT OR REPLACE INTO meta VALUES ('hlc', ?1)")?.execute(params![hlc])?;
    tx.prepare_cached("INSERT OR REPLACE INTO meta VALUES ('next_seq', ?1)")?
        .execute(params![&next_seq.to_le_bytes()[..]])?;
    Ok(())
}

/// The blind phone row and one blind row per name prefix of a record that names a person.
fn person_rows(
    tx: &rusqlite::Transaction<'_>,
    keys: &Keys,
    kind: u16,
    id: &[u8; 16],
    name: &str,
    phone: Option<&str>,
) -> Result<()> {
    if let Some(p) = phone.filter(|p| !p.is_empty()) {
        let blind = keys.blind("phone", p);
        tx.prepare_cached("INSERT INTO idx_phone VALUES (?1, ?2, ?3)")?.execute(params![blind, kind, &id[..]])?;
    }
    let name = name.trim();
    if !name.is_empty() {
        for blind in keys.name_prefixes(name) {
            tx.prepare_cached("INSERT INTO idx_name VALUES (?1, ?2, ?3)")?.execute(params![blind, kind, &id[..]])?;
        }
    }
    Ok(())
}

fn outbox_row(tx: &rusqlite::Transaction<'_>, rec: &SealedRecord) -> Result<()> {
    tx.prepare_cached("INSERT INTO outbox(seq, op) VALUES (?1, ?2)")?.execute(params![rec.seq as i64, rec.op])?;
    Ok(())
}

/// One record of a registration as the kiosk store writes it: the sealed stored bytes and the sealed outbox op.
pub struct SealedRecord {
    pub id: u128,
    pub seq: u64,
    pub stored: Vec<u8>,
    pub op: Vec<u8>,
}

/// Registration `i` at `at` (ms) as the kiosk store writes it: the arrival and, when the follow-up rule calls for
/// one, its follow-up task, each encoded, sealed and given the next outbox sequence number.
pub struct Registration {
    pub arrival: Arrival,
    pub arrival_rec: SealedRecord,
    pub followup: Option<(FollowupTask, SealedRecord)>,
}

/// Builds [`Registration`] `i`: validated and encoded as the kiosk store does it ([`encoded_arrival`],
/// [`encoded_followup`]), sealed with `keys` (the record's place and the op's sequence number as associated data).
pub fn registration(
    refs: &ReferenceData,
    keys: &Keys,
    clock: &mut HlcClock,
    next_seq: &mut u64,
    i: u64,
    at: i64,
) -> Result<Registration> {
    let (arrival, stored, op) = encoded_arrival(refs, clock, *next_seq, i, at)?;
    let arrival_rec = seal(keys, "rec_arrival", arrival.id.as_u128(), *next_seq, &stored, &op)?;
    *next_seq += 1;
    let followup = match encoded_followup(refs, clock, *next_seq, &arrival, at)? {
        Some((task, stored, op)) => {
            let rec = seal(keys, "rec_followup_task", task.id.as_u128(), *next_seq, &stored, &op)?;
            *next_seq += 1;
            Some((task, rec))
        }
        None => None,
    };
    Ok(Registration { arrival, arrival_rec, followup })
}

/// The sealed bytes registration `i` writes (the arrival's record and op, then the task's when it gets one).
pub fn sealed_registration(
    refs: &ReferenceData,
    keys: &Keys,
    clock: &mut HlcClock,
    next_seq: &mut u64,
    i: u64,
    at: i64,
) -> Result<Vec<Vec<u8>>> {
    let reg = registration(refs, keys, clock, next_seq, i, at)?;
    let mut out = vec![reg.arrival_rec.stored, reg.arrival_rec.op];
    if let Some((_, rec)) = reg.followup {
        out.push(rec.stored);
        out.push(rec.op);
    }
    Ok(out)
}

/// A record, its stored bytes (schema prefix + codec) and its encoded outbox op.
pub type Encoded<R> = (R, Vec<u8>, Vec<u8>);

/// Validates and encodes arrival `i` exactly as the kiosk store does: the stored record bytes (schema prefix +
/// codec) and the encoded outbox op.
pub fn encoded_arrival(
    refs: &ReferenceData,
    clock: &mut HlcClock,
    seq: u64,
    i: u64,
    at: i64,
) -> Result<Encoded<Arrival>> {
    let at = Moment(at);
    let form = fixtures::form(refs, i);
    let draft = form.validate(refs, at.local_date(china_offset()))?;
    let stamp = clock.tick(at.0.max(0) as u64);
    let a = draft.into_record(RecordId::new_v7(at), at, StaffRef("D001".into()), stamp);
    let (stored, op) = encoded_op(clock, seq, RecordKind::Arrival, a.id.as_u128(), codec::encode(&a)?, at)?;
    Ok((a, stored, op))
}

/// The follow-up task registering `a` calls for, if any ([`outpatient_plan`], as
/// `guidedesk::command::calls::outpatient_followup` applies it), made at `at` (ms) and encoded like
/// [`encoded_arrival`].
pub fn encoded_followup(
    refs: &ReferenceData,
    clock: &mut HlcClock,
    seq: u64,
    a: &Arrival,
    at: i64,
) -> Result<Option<Encoded<FollowupTask>>> {
    let at = Moment(at);
    let day = a.arrived_at.local_date(china_offset());
    let Some(plan) = outpatient_plan(&refs.followup_policy, a, day) else { return Ok(None) };
    let stamp = clock.tick(at.0.max(0) as u64);
    let task = FollowupTask {
        id: RecordId::new_v7(at),
        created_at: at,
        created_by: a.handled_by.clone(),
        source: plan.source,
        patient_name: plan.patient_name,
        phone: plan.phone,
        department: plan.department,
        inpatient: false,
        due_from: plan.window.0,
        due_to: plan.window.1,
        status: Lww::new(FollowupStatus::Open, stamp),
        closed_at: Lww::new(None, stamp),
    };
    let (stored, op) = encoded_op(clock, seq, RecordKind::FollowupTask, task.id.as_u128(), codec::encode(&task)?, at)?;
    Ok(Some((task, stored, op)))
}

/// A record's stored bytes (schema prefix + its codec `payload`) and its encoded outbox op, stamped at `at`.
fn encoded_op(
    clock: &mut HlcClock,
    seq: u64,
    kind: RecordKind,
    id: u128,
    payload: Vec<u8>,
    at: Moment,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut stored = RECORD_SCHEMA.to_le_bytes().to_vec();
    stored.extend_from_slice(&payload);
    let op = Op {
        seq,
        key: RecordKey { kind: kind.code(), id },
        schema: RECORD_SCHEMA,
        stamp: clock.tick(at.0.max(0) as u64),
        payload,
    };
    Ok((stored, codec::encode(&op)?))
}

/// The record and op bytes sealed as the kiosk store seals them (same places as associated data).
fn seal(keys: &Keys, table: &str, id: u128, seq: u64, stored: &[u8], op: &[u8]) -> Result<SealedRecord> {
    Ok(SealedRecord {
        id,
        seq,
        stored: keys.seal(&record_place(table, id), stored)?,
        op: keys.seal(&outbox_place(seq), op)?,
    })
}

/// A bare write of the same bytes (the sealed records + sealed ops of one registration: the arrival's, and the
/// follow-up task's when it gets one) followed by fdatasync, in a preallocated file written in place: the physical
/// floor of a durable commit on this disk (no file growth, no allocation, no index).
pub struct Fsync {
    file: std::fs::File,
    at: u64,
}

const FSYNC_FILE: u64 = 16 << 20;

impl Fsync {
    pub fn open(dir: &Path) -> Result<Fsync> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.join("bench.log"))?;
        // Preallocate with real zeros (not a sparse hole), durably, so a commit only overwrites blocks.
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..FSYNC_FILE >> 20 {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        Ok(Fsync { file, at: 0 })
    }

    /// Writes `parts` one after another at the next free place, then `fdatasync`.
    pub fn commit(&mut self, parts: &[Vec<u8>]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if self.at + len > FSYNC_FILE {
            self.at = 0;
        }
        for p in parts {
            self.file.write_all_at(p, self.at)?;
            self.at += p.len() as u64;
        }
        self.file.sync_data()?;
        Ok(())
    }
}

/// A keep-alive HTTP/1.1 client on a bare TCP stream: POSTs a body and reads the answer.
pub struct RawClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
    host: String,
}

impl RawClient {
    pub fn connect(url: &str) -> Result<RawClient> {
        let host = url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let w = TcpStream::connect(&host)?;
        w.set_nodelay(true)?;
        let r = BufReader::new(w.try_clone()?);
        Ok(RawClient { w, r, host })
    }

    /// POSTs `body` to `path`; returns the status code.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Result<u16> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.w.write_all(head.as_bytes())?;
        self.w.write_all(body)?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line.split_whitespace().nth(1).context("no status line")?.parse()?;
        let mut len = 0usize;
        loop {
            line.clear();
            if self.r.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().context("content-length")?;
            }
        }
        let mut buf = vec![0u8; len];
        self.r.read_exact(&mut buf)?;
        Ok(status)
    }
}

/// A trivial HTTP/1.1 server on loopback: reads each request's body and answers `200 ok`, keep-alive. The limit
/// of what any sync server could do with the same bytes over the same transport.
pub struct RawServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl RawServer {
    pub fn start() -> Result<RawServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        std::thread::Builder::new().name("raw-http".into()).spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    std::thread::spawn(move || {
                        let _ = serve(c);
                    });
                }
            }
        })?;
        Ok(RawServer { url: format!("http://{addr}"), stop, addr })
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(c: TcpStream) -> Result<()> {
    c.set_nodelay(true)?;
    let mut w = c.try_clone()?;
    let mut r = BufReader::new(c);
    let mut body = Vec::new();
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().context("content-length")?;
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
        w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok")?;
    }
}
