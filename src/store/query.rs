//! The read side: records by id, a day's arrivals and step counts, lookups by phone and name prefix (blind
//! indexes), date ranges, the open-case and follow-up due lists, children of a record, the hash chains as stored,
//! the audit log and the store's counts.
//!
//! Every query runs in one read transaction and returns decrypted records. Reads inside a write transaction are
//! `WriteCtx`'s (`write.rs`); the outbox is read in `outbox.rs`.

use chrono::NaiveDate;
use redb::{ReadableTable, ReadableTableMetadata};

use std::collections::HashMap;

use super::backlog::{self, BlindTable};
use super::crypto;
use super::tables::{self, meta};
use super::write::person;
use super::{Store, StoreError, chain_keys, day_number, open_any, open_record, read_chain_pos, read_u64};
use crate::model::{
    AnyRecord, Appointment, Arrival, AuditEntry, CallAttempt, Case, Chained, Consultation, Feedback, FollowupTask,
    Moment, Record, RecordId, RecordKind,
};

/// Counts and sizes, for `guidedesk stats` and the status bar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Records per kind name.
    pub records: std::collections::BTreeMap<&'static str, u64>,
    /// Ops not yet acknowledged by HQ.
    pub outbox_pending: u64,
    /// Ops written in total (the last sequence number).
    pub outbox_last_seq: u64,
    /// Highest sequence number acknowledged by HQ.
    pub outbox_acked_seq: u64,
    /// Size of the store file in bytes.
    pub store_bytes: u64,
    /// Schema version.
    pub schema: u32,
    /// This kiosk's device id.
    pub device: String,
    /// Records written here and records other desks of the site wrote (relayed by HQ).
    pub by_origin: super::ByOrigin,
}

impl Store {
    /// A record by id.
    pub fn get<R: Record>(&self, id: RecordId) -> Result<Option<R>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let keys = self.keys();
        t.get(id.as_u128())?.map(|g| open_record::<R>(&keys, id.as_u128(), g.value())).transpose()
    }

    /// Records of a kind by id, skipping ids that do not exist.
    pub fn get_many<R: Record>(&self, ids: impl IntoIterator<Item = RecordId>) -> Result<Vec<R>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let keys = self.keys();
        let mut out = Vec::new();
        for id in ids {
            if let Some(g) = t.get(id.as_u128())? {
                out.push(open_record::<R>(&keys, id.as_u128(), g.value())?);
            }
        }
        Ok(out)
    }

    /// Number of records of a kind.
    pub fn count(&self, kind: RecordKind) -> Result<u64, StoreError> {
        Ok(self.read()?.open_table(tables::records(kind))?.len()?)
    }

    /// Arrivals of a local day (board order: arrival order), optionally only those at some steps.
    pub fn arrivals_on(&self, day: NaiveDate) -> Result<Vec<Arrival>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?;
        let d = day_number(day);
        let mut ids = Vec::new();
        for e in idx.range((d, 0u8, 0u128)..=(d, u8::MAX, u128::MAX))? {
            ids.push(e?.0.value().2);
        }
        ids.sort_unstable();
        let t = tx.open_table(tables::records(RecordKind::Arrival))?;
        let keys = self.keys();
        let mut cache = self.day_cache.lock().map_err(|_| StoreError::Meta("day cache lock poisoned".into()))?;
        if cache.day != Some(day) {
            *cache = DayCache { day: Some(day), rows: HashMap::with_capacity(ids.len()) };
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut fresh = HashMap::with_capacity(ids.len());
        for id in ids {
            let Some(value) = t.get(id)? else { continue };
            let sealed = value.value();
            let nonce = crypto::sealed_nonce(sealed);
            let arrival = match cache.rows.remove(&id) {
                // The same sealed version as last read: the decoded copy is exact.
                Some((seen, cached)) if nonce == Some(seen) => cached,
                _ => open_record::<Arrival>(&keys, id, sealed)?,
            };
            out.push(arrival.clone());
            if let Some(nonce) = nonce {
                fresh.insert(id, (nonce, arrival));
            }
        }
        // Only what is on the day now stays: an arrival moved off the day or purged is dropped.
        cache.rows = fresh;
        drop(cache);
        out.sort_by_key(|a| (a.arrived_at, a.steps.first().map(|e| e.stamp), a.id));
        Ok(out)
    }

    /// Bookings for the local days `from..=to`, in (day, session, time slot, booking time) order.
    pub fn appointments_between(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Appointment>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_APPOINTMENT_DAY)?;
        let t = tx.open_table(tables::records(RecordKind::Appointment))?;
        appointments_in(&idx, &t, &self.keys(), from, to)
    }

    /// How many of a day's arrivals are at each step (index only; no record is decoded).
    pub fn step_counts_on(&self, day: NaiveDate) -> Result<Vec<(u8, u64)>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?;
        let d = day_number(day);
        let mut counts: Vec<(u8, u64)> = Vec::new();
        for e in idx.range((d, 0u8, 0u128)..=(d, u8::MAX, u128::MAX))? {
            let step = e?.0.value().1;
            match counts.last_mut() {
                Some((s, n)) if *s == step => *n += 1,
                _ => counts.push((step, 1)),
            }
        }
        Ok(counts)
    }

    /// Records (of any indexed kind) with this phone number.
    pub fn find_by_phone(&self, phone: &str) -> Result<Vec<(RecordKind, RecordId)>, StoreError> {
        let blind = self.keys().blind("phone", phone);
        let phone = blind.as_str();
        // The backlog of a catch-up is read with the same snapshot (see `store::backlog`).
        let backlog = self.backlog()?;
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_PHONE)?;
        let mut found = Vec::new();
        for e in idx.range((phone, 0u16, 0u128)..=(phone, u16::MAX, u128::MAX))? {
            let (_, kind, id) = e?.0.value();
            found.push((kind, id));
        }
        if !backlog.is_empty() {
            backlog::overlay(&backlog, BlindTable::Phone, phone, &mut found);
            found.sort_unstable();
        }
        drop(backlog);
        Ok(found
            .into_iter()
            .filter_map(|(kind, id)| RecordKind::from_code(kind).map(|k| (k, RecordId::from_u128(id))))
            .collect())
    }

    /// Records (of any indexed kind) whose name starts with `prefix`, at most `limit`: the newest `limit` of each
    /// kind, ordered by (name, kind, id), cut to `limit`.
    pub fn find_by_name_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, RecordKind, RecordId)>, StoreError> {
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        // The index holds keyed hashes of name prefixes, by (blind key, kind, id). Ids are time-ordered, so each
        // kind's range read backwards gives its newest matches first: at most `limit` of each kind are decrypted
        // (a common prefix among a million records no longer decrypts thousands), then ordered by (name, kind,
        // id) as a plaintext index would.
        let keys = self.keys();
        let blind = keys.name_query(prefix);
        let backlog = self.backlog()?;
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_NAME)?;
        // During a catch-up, the entries still in the backlog are laid over the table's (see `store::backlog`).
        let pending = if backlog.is_empty() {
            None
        } else {
            let mut found = Vec::new();
            for e in idx.range((blind.as_str(), 0u16, 0u128)..=(blind.as_str(), u16::MAX, u128::MAX))? {
                let (_, kind, id) = e?.0.value();
                found.push((kind, id));
            }
            backlog::overlay(&backlog, BlindTable::Name, &blind, &mut found);
            found.sort_unstable();
            Some(found)
        };
        drop(backlog);
        let mut out = Vec::new();
        for kind in RecordKind::ALL {
            let code = kind.code();
            let mut range: Box<dyn Iterator<Item = Result<u128, StoreError>>> = match &pending {
                Some(found) => Box::new(found.iter().rev().filter(move |(k, _)| *k == code).map(|(_, id)| Ok(*id))),
                None => Box::new(
                    idx.range((blind.as_str(), code, 0u128)..=(blind.as_str(), code, u128::MAX))?
                        .rev()
                        .map(|e| Ok(e?.0.value().2)),
                ),
            };
            let mut range = range.by_ref().peekable();
            if range.peek().is_none() {
                continue;
            }
            let t = tx.open_table(tables::records(kind))?;
            let mut found = 0;
            for id in range {
                if found >= limit {
                    break;
                }
                let id = id?;
                let Some(v) = t.get(id)? else { continue };
                let rec = open_any(&keys, kind, id, v.value())?;
                if let Some(name) = person(&rec).0.map(str::trim).filter(|n| n.starts_with(prefix)) {
                    out.push((name.to_string(), kind, RecordId::from_u128(id)));
                    found += 1;
                }
            }
        }
        out.sort_by(|a, b| (&a.0, a.1.code(), a.2).cmp(&(&b.0, b.1.code(), b.2)));
        out.truncate(limit);
        Ok(out)
    }

    /// Ids of records of a kind whose business time lies in `[from, to)`, in time order.
    pub fn ids_between(&self, kind: RecordKind, from: Moment, to: Moment) -> Result<Vec<RecordId>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_TIME)?;
        let k = kind.code();
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for e in idx.range((k, from.0, 0u128)..(k, to.0, 0u128))? {
            out.push(RecordId::from_u128(e?.0.value().2));
        }
        Ok(out)
    }

    /// Records of a kind whose business time lies in `[from, to)`, in time order; `f` is called for each so large
    /// ranges need not be held in memory.
    pub fn for_each_between(
        &self,
        kind: RecordKind,
        from: Moment,
        to: Moment,
        mut f: impl FnMut(AnyRecord) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_TIME)?;
        let t = tx.open_table(tables::records(kind))?;
        let k = kind.code();
        let keys = self.keys();
        let mut n = 0;
        if from >= to {
            return Ok(0);
        }
        for e in idx.range((k, from.0, 0u128)..(k, to.0, 0u128))? {
            let id = e?.0.value().2;
            if let Some(g) = t.get(id)? {
                f(open_any(&keys, kind, id, g.value())?)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Open cases with a due date up to and including `until` (all open cases when `None`), soonest first.
    pub fn open_cases_due(&self, until: Option<NaiveDate>) -> Result<Vec<Case>, StoreError> {
        self.due_list(tables::IDX_CASE_OPEN_DUE, until)
    }

    /// Open follow-up tasks whose window starts up to and including `until` (all when `None`), soonest first.
    pub fn open_followups_due(&self, until: Option<NaiveDate>) -> Result<Vec<FollowupTask>, StoreError> {
        self.due_list(tables::IDX_FOLLOWUP_OPEN_DUE, until)
    }

    fn due_list<R: Record>(
        &self,
        def: redb::TableDefinition<(i32, u128), ()>,
        until: Option<NaiveDate>,
    ) -> Result<Vec<R>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(def)?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let end = until.map_or(i32::MAX, day_number);
        let keys = self.keys();
        let mut out = Vec::new();
        for e in idx.range((i32::MIN, 0u128)..=(end, u128::MAX))? {
            let id = e?.0.value().1;
            if let Some(g) = t.get(id)? {
                out.push(open_record::<R>(&keys, id, g.value())?);
            }
        }
        Ok(out)
    }

    /// The follow-up task made from a source, if any.
    pub fn followup_by_source(&self, dedup_key: &str) -> Result<Option<RecordId>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?;
        let blind = self.keys().blind("source", dedup_key);
        Ok(idx.get(blind.as_str())?.map(|g| RecordId::from_u128(g.value())))
    }

    /// Call attempts of a task, in time order.
    pub fn attempts_of(&self, task: RecordId) -> Result<Vec<CallAttempt>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_CALLS_BY_TASK)?;
        let t = tx.open_table(tables::records(RecordKind::CallAttempt))?;
        let k = task.as_u128();
        let keys = self.keys();
        let mut out = Vec::new();
        for e in idx.range((k, 0u128)..=(k, u128::MAX))? {
            let id = e?.0.value().1;
            if let Some(g) = t.get(id)? {
                out.push(open_record::<CallAttempt>(&keys, id, g.value())?);
            }
        }
        out.sort_by_key(|a| (a.at, a.id));
        Ok(out)
    }

    /// Consultations linked to an arrival.
    pub fn consultations_of_arrival(&self, arrival: RecordId) -> Result<Vec<Consultation>, StoreError> {
        let tx = self.read()?;
        let idx = tx.open_table(tables::IDX_CONSULTATION_ARRIVAL)?;
        let k = arrival.as_u128();
        let mut ids = Vec::new();
        for e in idx.range((k, 0u128)..=(k, u128::MAX))? {
            ids.push(RecordId::from_u128(e?.0.value().1));
        }
        drop(idx);
        drop(tx);
        self.get_many(ids)
    }

    /// The records of a chained kind in chain order (the whole chain), for verification.
    pub fn chain<R: Chained>(&self) -> Result<Vec<R>, StoreError> {
        let tx = self.read()?;
        let t = tx.open_table(tables::records(R::KIND))?;
        let replicas = tx.open_table(tables::REPLICAS)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        let keys = self.keys();
        for e in t.iter()? {
            let (k, v) = e?;
            // Other desks' records are links of their own chains (`Store::verify_replica_chains`).
            if replicas.get((R::KIND.code(), k.value()))?.is_some() {
                continue;
            }
            out.push(open_record::<R>(&keys, k.value(), v.value())?);
        }
        out.sort_by_key(Chained::chain_index);
        Ok(out)
    }

    /// A chain's head as stored: (next index, hash of the last record).
    pub fn chain_head(&self, kind: RecordKind) -> Result<(u64, [u8; 32]), StoreError> {
        let tx = self.read()?;
        read_chain_pos(&tx.open_table(tables::META)?, chain_keys(kind)?.0)
    }

    /// A chain's base after retention purges: the first index still expected and the hash it must follow.
    pub fn chain_base(&self, kind: RecordKind) -> Result<(u64, [u8; 32]), StoreError> {
        let tx = self.read()?;
        read_chain_pos(&tx.open_table(tables::META)?, chain_keys(kind)?.1)
    }

    /// Audit entries whose time lies in `from..to`, oldest first.
    pub fn audit_entries(&self, from: Moment, to: Moment) -> Result<Vec<AuditEntry>, StoreError> {
        let ids = self.ids_between(RecordKind::Audit, from, to)?;
        self.get_many(ids)
    }

    /// Feedback records in chain order (the whole chain), for verification.
    pub fn feedback_chain(&self) -> Result<Vec<Feedback>, StoreError> {
        self.chain()
    }

    /// The feedback chain head as stored: (next index, hash of the last record).
    pub fn feedback_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.chain_head(RecordKind::Feedback)
    }

    /// The feedback chain's base: the first index still expected and the hash it must follow.
    pub fn feedback_base(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.chain_base(RecordKind::Feedback)
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let tx = self.read()?;
        let mut records = std::collections::BTreeMap::new();
        for kind in RecordKind::ALL {
            records.insert(kind.name(), tx.open_table(tables::records(kind))?.len()?);
        }
        let m = tx.open_table(tables::META)?;
        let last = read_u64(&m, meta::NEXT_SEQ)?.saturating_sub(1);
        let acked = read_u64(&m, meta::ACKED_SEQ)?;
        let schema = match m.get(meta::SCHEMA)? {
            Some(g) => u32::from_le_bytes(g.value().try_into().unwrap_or([0; 4])),
            None => 0,
        };
        let store_bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let total: u64 = records.values().sum();
        let replicated = tx.open_table(tables::REPLICAS)?.len()?;
        let by_origin = super::ByOrigin { local: total.saturating_sub(replicated), replicated };
        Ok(Stats {
            records,
            outbox_pending: last.saturating_sub(acked),
            outbox_last_seq: last,
            outbox_acked_seq: acked,
            store_bytes,
            schema,
            device: uuid::Uuid::from_u128(self.device.0).to_string(),
            by_origin,
        })
    }
}

/// The bookings for the days `from..=to` through the day index (see [`Store::appointments_between`]); shared with
/// the write path, which reads them inside its transaction.
pub(super) fn appointments_in(
    idx: &impl ReadableTable<(i32, u8, u128), ()>,
    records: &impl ReadableTable<u128, &'static [u8]>,
    keys: &super::crypto::Keys,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Appointment>, StoreError> {
    let mut out = Vec::new();
    for e in idx.range((day_number(from), 0u8, 0u128)..=(day_number(to), u8::MAX, u128::MAX))? {
        let id = e?.0.value().2;
        if let Some(g) = records.get(id)? {
            out.push(open_record::<Appointment>(keys, id, g.value())?);
        }
    }
    out.sort_by(|a, b| {
        (a.day, a.session, &a.slot, a.booked_at, a.id).cmp(&(b.day, b.session, &b.slot, b.booked_at, b.id))
    });
    Ok(out)
}

/// The decoded arrivals of one day, each with the nonce of the sealed value it was opened from. A read of the day
/// decrypts and decodes only the arrivals whose stored value changed since the last read (a new nonce: every write
/// path — a local change, a replicated merge, a purge, a key rotation — seals anew), so the board's read of today
/// costs an index scan and one lookup per arrival; exact by construction, whatever wrote the store.
#[derive(Debug, Default)]
pub(crate) struct DayCache {
    day: Option<NaiveDate>,
    rows: HashMap<u128, ([u8; crypto::NONCE_LEN], Arrival)>,
}
