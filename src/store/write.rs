//! The write path: [`Store::write`] hands a [`WriteCtx`] to a closure inside one durable redb transaction. The
//! context reads its own writes, stores records (`put`), appends to the hash chains (`append_chained`, the audit
//! log), keeps every secondary index in step with the record and appends each write's outbox op.
//!
//! What an index entry is for a record is decided here (`entries`); checking and rebuilding indexes from the
//! records is `verify.rs`, reading them is `query.rs`, and what happens to ops after they are written `outbox.rs`.

use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate};
use guidedesk_sync::{Hlc, HlcClock, Op, RecordKey, codec};
use redb::{ReadableTable, TableHandle as _, WriteTransaction};

use super::crypto::{Keys, outbox_place, record_place};
use super::tables::{self, meta};
use super::{Store, StoreError, chain_keys, day_number, open_any, open_record, read_chain_pos, read_u64};
use crate::model::codec::encode_any;
use crate::model::{
    AnyRecord, AuditAction, AuditEntry, AuditTarget, Case, Chained, Feedback, Moment, RECORD_SCHEMA, Record, RecordId,
    RecordKind, ReferenceData, StaffRef,
};

impl Store {
    /// Runs `f` in one write transaction and commits it durably. If `f` fails, or the commit fails, nothing is
    /// written and the in-memory HLC is unchanged.
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut guard = self.hlc.lock().map_err(|_| StoreError::Meta("clock lock poisoned by a panic".into()))?;
        let tx = self.db.begin_write()?;
        let mut ctx = WriteCtx {
            tx,
            clock: guard.clone(),
            now: self.clock.now(),
            offset: self.offset,
            next_seq: None,
            chain_heads: Vec::new(),
            reference: self.reference(),
            keys: self.keys(),
            _store: std::marker::PhantomData,
        };
        let out = f(&mut ctx)?;
        let clock = ctx.finish()?;
        *guard = clock;
        Ok(out)
    }

    /// Appends one audit entry in a transaction of its own (views, reveals, exports: nothing else changes).
    pub fn audit(
        &self,
        actor: &StaffRef,
        action: AuditAction,
        target: Option<AuditTarget>,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        self.write(|ctx| ctx.audit(actor, action, target, detail))
    }
}

/// One write transaction in progress. Obtain it from [`Store::write`].
pub struct WriteCtx<'s> {
    tx: WriteTransaction,
    clock: HlcClock,
    now: Moment,
    offset: FixedOffset,
    next_seq: Option<u64>,
    /// Heads of the hash chains appended to in this transaction: (kind, (next index, last hash)).
    chain_heads: Vec<(RecordKind, (u64, [u8; 32]))>,
    reference: Arc<ReferenceData>,
    keys: Arc<Keys>,
    _store: std::marker::PhantomData<&'s Store>,
}

impl std::fmt::Debug for WriteCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteCtx").field("now", &self.now).field("next_seq", &self.next_seq).finish_non_exhaustive()
    }
}

impl WriteCtx<'_> {
    /// The wall-clock time of this transaction.
    pub fn now(&self) -> Moment {
        self.now
    }

    /// Today's local date.
    pub fn today(&self) -> NaiveDate {
        self.now.local_date(self.offset)
    }

    /// The sequence number of the last op this transaction appended, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.next_seq.map(|s| s - 1)
    }

    /// The reference data.
    pub fn reference(&self) -> &ReferenceData {
        &self.reference
    }

    /// A new HLC stamp, greater than every stamp issued before.
    pub fn stamp(&mut self) -> Hlc {
        let phys = self.now.0.max(0) as u64;
        self.clock.tick(phys)
    }

    /// A new record id for a record made now.
    pub fn new_id(&self) -> RecordId {
        RecordId::new_v7(self.now)
    }

    /// A record by id (sees this transaction's own writes).
    pub fn get<R: Record>(&self, id: RecordId) -> Result<Option<R>, StoreError> {
        let t = self.tx.open_table(tables::records(R::KIND))?;
        let v = t.get(id.as_u128())?;
        v.map(|g| open_record::<R>(&self.keys, id.as_u128(), g.value())).transpose()
    }

    /// A record by id, or `NotFound`.
    pub fn require<R: Record>(&self, id: RecordId) -> Result<R, StoreError> {
        self.get::<R>(id)?.ok_or(StoreError::NotFound { kind: R::KIND, id })
    }

    /// The follow-up task made from a source, if any (sees this transaction's writes).
    pub fn followup_by_source(&self, dedup_key: &str) -> Result<Option<RecordId>, StoreError> {
        let idx = self.tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?;
        let blind = self.keys.blind("source", dedup_key);
        let v = idx.get(blind.as_str())?;
        Ok(v.map(|g| RecordId::from_u128(g.value())))
    }

    /// Bookings for the local days `from..=to` (sees this transaction's writes), in (day, session, slot) order.
    pub fn appointments_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<crate::model::Appointment>, StoreError> {
        let idx = self.tx.open_table(tables::IDX_APPOINTMENT_DAY)?;
        let t = self.tx.open_table(tables::records(RecordKind::Appointment))?;
        super::query::appointments_in(&idx, &t, &self.keys, from, to)
    }

    /// Ids of records of a kind whose business time lies in `[from, to)` (sees this transaction's writes).
    pub fn ids_between(&self, kind: RecordKind, from: Moment, to: Moment) -> Result<Vec<RecordId>, StoreError> {
        let idx = self.tx.open_table(tables::IDX_TIME)?;
        let k = kind.code();
        let mut out = Vec::new();
        if from < to {
            for e in idx.range((k, from.0, 0u128)..(k, to.0, 0u128))? {
                out.push(RecordId::from_u128(e?.0.value().2));
            }
        }
        Ok(out)
    }

    /// Records of a kind with this phone number (sees this transaction's writes).
    pub fn ids_by_phone(&self, kind: RecordKind, phone: &str) -> Result<Vec<RecordId>, StoreError> {
        let blind = self.keys.blind("phone", phone);
        let idx = self.tx.open_table(tables::IDX_PHONE)?;
        let k = kind.code();
        let mut out = Vec::new();
        for e in idx.range((blind.as_str(), k, 0u128)..=(blind.as_str(), k, u128::MAX))? {
            out.push(RecordId::from_u128(e?.0.value().2));
        }
        Ok(out)
    }

    /// The site's UTC offset.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// How many call attempts a task has (sees this transaction's writes).
    pub fn attempts_of(&self, task: RecordId) -> Result<usize, StoreError> {
        let idx = self.tx.open_table(tables::IDX_CALLS_BY_TASK)?;
        let k = task.as_u128();
        let n = idx.range((k, 0u128)..=(k, u128::MAX))?.count();
        Ok(n)
    }

    /// A case made from a feedback record, if any (open or closed).
    pub fn case_from_feedback(&self, feedback: RecordId) -> Result<Option<RecordId>, StoreError> {
        let t = self.tx.open_table(tables::records(RecordKind::Case))?;
        for e in t.iter()? {
            let (k, v) = e?;
            let c: Case = open_record(&self.keys, k.value(), v.value())?;
            if c.from_feedback == Some(feedback) {
                return Ok(Some(c.id));
            }
        }
        Ok(None)
    }

    /// Ids of open follow-up tasks whose window starts on or before `until` (sees this transaction's writes).
    pub fn open_followup_ids_due(&self, until: NaiveDate) -> Result<Vec<RecordId>, StoreError> {
        let idx = self.tx.open_table(tables::IDX_FOLLOWUP_OPEN_DUE)?;
        let mut out = Vec::new();
        for e in idx.range((i32::MIN, 0u128)..=(day_number(until), u128::MAX))? {
            out.push(RecordId::from_u128(e?.0.value().1));
        }
        Ok(out)
    }

    /// Writes a record (new or changed), maintains its indexes and appends its outbox op.
    /// Feedback and audit entries are append-only: they go through [`WriteCtx::append_chained`].
    pub fn put<R: Record>(&mut self, rec: &R) -> Result<(), StoreError> {
        if meta::chain_keys(R::KIND).is_some() {
            return Err(StoreError::Conflict(format!("{} records are append-only; use append_chained", R::KIND)));
        }
        self.put_any(&rec.clone().into_any())
    }

    /// Appends a record at the end of this kiosk's hash chain of its kind (sealing it) and returns the sealed
    /// record. An id already stored is refused: chained records never change.
    pub fn append_chained<R: Chained>(&mut self, mut rec: R) -> Result<R, StoreError> {
        let (head_key, _) = chain_keys(R::KIND)?;
        if self.get::<R>(Record::id(&rec))?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{} {} already exists and cannot be changed",
                R::KIND,
                Record::id(&rec)
            )));
        }
        let slot = self.chain_heads.iter().position(|(k, _)| *k == R::KIND);
        let (index, prev) = match slot {
            Some(i) => self.chain_heads[i].1,
            None => read_chain_pos(&self.tx.open_table(tables::META)?, head_key)?,
        };
        rec.seal(index, prev);
        let head = (index + 1, rec.hash());
        match slot {
            Some(i) => self.chain_heads[i].1 = head,
            None => self.chain_heads.push((R::KIND, head)),
        }
        self.put_any(&rec.clone().into_any())?;
        Ok(rec)
    }

    /// Appends a feedback record to this kiosk's feedback chain ([`WriteCtx::append_chained`]).
    pub fn append_feedback(&mut self, fb: Feedback) -> Result<Feedback, StoreError> {
        self.append_chained(fb)
    }

    /// Appends an audit entry made now to this kiosk's audit chain, in this transaction: it commits with the
    /// change it records, or not at all.
    pub fn audit(
        &mut self,
        actor: &StaffRef,
        action: AuditAction,
        target: Option<AuditTarget>,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry::new(self.new_id(), self.now, actor.clone(), action, target, detail);
        self.append_chained(entry)
    }

    fn put_any(&mut self, rec: &AnyRecord) -> Result<(), StoreError> {
        let kind = rec.kind();
        let id = rec.id().as_u128();
        let (stored, payload) = encode_any(rec)?;
        let old = {
            let def = tables::records(kind);
            let sealed = self.keys.seal(&record_place(def.name(), id), &stored)?;
            let mut t = self.tx.open_table(def)?;
            let old = t.insert(id, sealed.as_slice())?;
            old.map(|g| open_any(&self.keys, kind, id, g.value())).transpose()?
        };
        if let Some(old) = &old {
            index_apply(&self.tx, old, self.offset, &self.keys, false)?;
        }
        index_apply(&self.tx, rec, self.offset, &self.keys, true)?;
        let seq = match self.next_seq {
            Some(s) => s,
            None => read_u64(&self.tx.open_table(tables::META)?, meta::NEXT_SEQ)?,
        };
        let stamp = self.stamp();
        let op = Op { seq, key: RecordKey { kind: kind.code(), id }, schema: RECORD_SCHEMA, stamp, payload };
        let sealed = self.keys.seal(&outbox_place(seq), &codec::encode(&op)?)?;
        self.tx.open_table(tables::OUTBOX)?.insert(seq, sealed.as_slice())?;
        self.next_seq = Some(seq + 1);
        Ok(())
    }

    fn finish(self) -> Result<HlcClock, StoreError> {
        let WriteCtx { mut tx, clock, next_seq, chain_heads, .. } = self;
        {
            let mut m = tx.open_table(tables::META)?;
            m.insert(meta::HLC, codec::encode(&clock.last())?.as_slice())?;
            if let Some(s) = next_seq {
                m.insert(meta::NEXT_SEQ, s.to_le_bytes().as_slice())?;
            }
            for (kind, head) in chain_heads {
                m.insert(chain_keys(kind)?.0, codec::encode(&head)?.as_slice())?;
            }
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        tx.commit()?;
        Ok(clock)
    }
}

/// The index entries one record contributes.
#[derive(Default)]
pub(super) struct Entries {
    pub(super) time: Option<(u16, i64, u128)>,
    pub(super) day_step: Option<(i32, u8, u128)>,
    pub(super) phones: Vec<(String, u16, u128)>,
    pub(super) names: Vec<(String, u16, u128)>,
    pub(super) case_due: Option<(i32, u128)>,
    pub(super) followup_due: Option<(i32, u128)>,
    pub(super) followup_source: Option<(String, u128)>,
    pub(super) call_by_task: Option<(u128, u128)>,
    pub(super) consultation_arrival: Option<(u128, u128)>,
    pub(super) appointment_day: Option<(i32, u8, u128)>,
}

/// The person a record names: (name, phone), for the blind name and phone indexes.
pub(super) fn person(rec: &AnyRecord) -> (Option<&str>, Option<&str>) {
    match rec {
        AnyRecord::Arrival(a) => (Some(&a.name), a.phone.as_deref()),
        AnyRecord::Consultation(c) => (c.name.as_deref(), c.phone.as_deref()),
        AnyRecord::Case(c) => (Some(&c.complainant), c.complainant_phone.as_deref()),
        AnyRecord::FollowupTask(t) => (Some(&t.patient_name), Some(&t.phone)),
        AnyRecord::Appointment(a) => (Some(&a.patient_name), Some(&a.phone)),
        AnyRecord::Feedback(_)
        | AnyRecord::CallAttempt(_)
        | AnyRecord::Audit(_)
        | AnyRecord::CallClaim(_)
        | AnyRecord::ShiftLog(_) => (None, None),
    }
}

pub(super) fn entries(rec: &AnyRecord, offset: FixedOffset, keys: &Keys) -> Entries {
    let kind = rec.kind().code();
    let id = rec.id().as_u128();
    let mut e = Entries { time: Some((kind, rec.occurred_at().0, id)), ..Entries::default() };
    let (name, phone) = person(rec);
    if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
        e.names.extend(keys.name_prefixes(n).into_iter().map(|b| (b, kind, id)));
    }
    if let Some(p) = phone.filter(|p| !p.is_empty()) {
        e.phones.push((keys.blind("phone", p), kind, id));
    }
    match rec {
        AnyRecord::Arrival(a) => {
            e.day_step = Some((day_number(a.arrived_at.local_date(offset)), a.step().code(), id));
        }
        AnyRecord::Consultation(c) => {
            if let Some(arr) = c.arrival.value {
                e.consultation_arrival = Some((arr.as_u128(), id));
            }
        }
        AnyRecord::Feedback(_) | AnyRecord::Audit(_) | AnyRecord::CallClaim(_) | AnyRecord::ShiftLog(_) => {}
        AnyRecord::Case(c) => {
            if c.is_open() {
                e.case_due = Some((day_number(c.due.value.0), id));
            }
        }
        AnyRecord::FollowupTask(t) => {
            if !t.status.value.is_final() {
                e.followup_due = Some((day_number(t.due_from), id));
            }
            e.followup_source = Some((keys.blind("source", &t.source.dedup_key()), id));
        }
        AnyRecord::CallAttempt(c) => e.call_by_task = Some((c.task.as_u128(), id)),
        AnyRecord::Appointment(a) => e.appointment_day = Some((day_number(a.day), a.session.code(), id)),
    }
    e
}

pub(super) fn index_apply(
    tx: &WriteTransaction,
    rec: &AnyRecord,
    offset: FixedOffset,
    keys: &Keys,
    insert: bool,
) -> Result<(), StoreError> {
    index_apply_with(tx, rec, offset, keys, insert, true)
}

/// [`index_apply`]; with `strict` false, a follow-up task whose source another task already claims is stored
/// beside it (two desks imported the same list while apart): the source index keeps the smaller id, and the
/// duplicate is shown for a supervisor to settle ([`crate::store::Store::duplicate_followups`]).
pub(super) fn index_apply_with(
    tx: &WriteTransaction,
    rec: &AnyRecord,
    offset: FixedOffset,
    keys: &Keys,
    insert: bool,
    strict: bool,
) -> Result<(), StoreError> {
    IndexTables::new(tx).apply(rec, offset, keys, insert, strict)
}

/// The secondary index tables of a write transaction, each opened on first use and then kept open, so a run of
/// records (a pulled page) opens each table once.
pub(super) struct IndexTables<'t> {
    tx: &'t WriteTransaction,
    time: Option<redb::Table<'t, (u16, i64, u128), ()>>,
    day_step: Option<redb::Table<'t, (i32, u8, u128), ()>>,
    phone: Option<redb::Table<'t, (&'static str, u16, u128), ()>>,
    name: Option<redb::Table<'t, (&'static str, u16, u128), ()>>,
    case_due: Option<redb::Table<'t, (i32, u128), ()>>,
    followup_due: Option<redb::Table<'t, (i32, u128), ()>>,
    followup_source: Option<redb::Table<'t, &'static str, u128>>,
    calls: Option<redb::Table<'t, (u128, u128), ()>>,
    consultations: Option<redb::Table<'t, (u128, u128), ()>>,
    appointments: Option<redb::Table<'t, (i32, u8, u128), ()>>,
}

/// The table in `slot`, opened from `def` the first time.
fn lazy<'s, 't, K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &'t WriteTransaction,
    slot: &'s mut Option<redb::Table<'t, K, V>>,
    def: redb::TableDefinition<'_, K, V>,
) -> Result<&'s mut redb::Table<'t, K, V>, StoreError> {
    if slot.is_none() {
        *slot = Some(tx.open_table(def)?);
    }
    slot.as_mut().ok_or_else(|| StoreError::Meta("an index table could not be opened".into()))
}

impl<'t> IndexTables<'t> {
    /// No table open yet.
    pub(super) fn new(tx: &'t WriteTransaction) -> IndexTables<'t> {
        IndexTables {
            tx,
            time: None,
            day_step: None,
            phone: None,
            name: None,
            case_due: None,
            followup_due: None,
            followup_source: None,
            calls: None,
            consultations: None,
            appointments: None,
        }
    }

    /// Adds (`insert`) or removes a record's index entries (see [`index_apply_with`] for `strict`).
    pub(super) fn apply(
        &mut self,
        rec: &AnyRecord,
        offset: FixedOffset,
        keys: &Keys,
        insert: bool,
        strict: bool,
    ) -> Result<(), StoreError> {
        let e = entries(rec, offset, keys);
        let tx = self.tx;
        macro_rules! apply {
            ($slot:expr, $def:expr, $key:expr) => {{
                let t = lazy(tx, &mut $slot, $def)?;
                if insert {
                    t.insert($key, ())?;
                } else {
                    t.remove($key)?;
                }
            }};
        }
        if let Some(k) = e.time {
            apply!(self.time, tables::IDX_TIME, k);
        }
        if let Some(k) = e.day_step {
            apply!(self.day_step, tables::IDX_ARRIVAL_DAY_STEP, k);
        }
        for (p, k, i) in &e.phones {
            apply!(self.phone, tables::IDX_PHONE, (p.as_str(), *k, *i));
        }
        for (n, k, i) in &e.names {
            apply!(self.name, tables::IDX_NAME, (n.as_str(), *k, *i));
        }
        if let Some(k) = e.case_due {
            apply!(self.case_due, tables::IDX_CASE_OPEN_DUE, k);
        }
        if let Some(k) = e.followup_due {
            apply!(self.followup_due, tables::IDX_FOLLOWUP_OPEN_DUE, k);
        }
        if let Some((s, id)) = &e.followup_source {
            let t = lazy(tx, &mut self.followup_source, tables::IDX_FOLLOWUP_SOURCE)?;
            let existing = t.get(s.as_str())?.map(|g| g.value());
            if insert {
                match existing {
                    Some(other) if other != *id && strict => {
                        let source = match rec {
                            AnyRecord::FollowupTask(t) => t.source.dedup_key(),
                            _ => s.clone(),
                        };
                        return Err(StoreError::Conflict(format!(
                            "a follow-up task already exists for source {source}"
                        )));
                    }
                    Some(other) if other < *id => {}
                    _ => {
                        t.insert(s.as_str(), *id)?;
                    }
                }
            } else if existing == Some(*id) {
                t.remove(s.as_str())?;
            }
        }
        if let Some(k) = e.call_by_task {
            apply!(self.calls, tables::IDX_CALLS_BY_TASK, k);
        }
        if let Some(k) = e.consultation_arrival {
            apply!(self.consultations, tables::IDX_CONSULTATION_ARRIVAL, k);
        }
        if let Some(k) = e.appointment_day {
            apply!(self.appointments, tables::IDX_APPOINTMENT_DAY, k);
        }
        Ok(())
    }
}
