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

use super::backlog::{BlindOp, BlindTable};
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
        let mut tx = self.db.begin_write()?;
        // A catch-up's phone and name entries go into their tables before this transaction reads or changes them.
        let settled = self.settle_backlog_in(&tx)?;
        let (out, clock) = {
            let mut ctx = WriteCtx {
                tx: &tx,
                tables: CtxTables::new(&tx),
                clock: guard.clone(),
                now: self.clock.now(),
                offset: self.offset,
                next_seq: None,
                chain_heads: Vec::new(),
                reference: self.reference(),
                keys: self.keys(),
            };
            let out = f(&mut ctx)?;
            (out, ctx.finish()?)
        };
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        self.commit_settled(tx, settled)?;
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
pub struct WriteCtx<'t> {
    tx: &'t WriteTransaction,
    /// The tables this transaction has used so far, kept open until it ends (a run of writes opens each once).
    tables: CtxTables<'t>,
    clock: HlcClock,
    now: Moment,
    offset: FixedOffset,
    next_seq: Option<u64>,
    /// Heads of the hash chains appended to in this transaction: (kind, (next index, last hash)).
    chain_heads: Vec<(RecordKind, (u64, [u8; 32]))>,
    reference: Arc<ReferenceData>,
    keys: Arc<Keys>,
}

/// The tables of a [`WriteCtx`], each opened on first use. redb opens a table once per transaction at a time, so
/// every read and write of the context goes through these handles.
struct CtxTables<'t> {
    /// Record tables by kind code − 1.
    records: [Option<redb::Table<'t, u128, &'static [u8]>>; RecordKind::ALL.len()],
    outbox: Option<redb::Table<'t, u64, &'static [u8]>>,
    meta: Option<redb::Table<'t, &'static str, &'static [u8]>>,
    index: IndexTables<'t>,
}

impl<'t> CtxTables<'t> {
    fn new(tx: &'t WriteTransaction) -> CtxTables<'t> {
        CtxTables { records: std::array::from_fn(|_| None), outbox: None, meta: None, index: IndexTables::new(tx) }
    }

    fn records(&mut self, kind: RecordKind) -> Result<&mut redb::Table<'t, u128, &'static [u8]>, StoreError> {
        lazy(self.index.tx, &mut self.records[kind_slot(kind)], tables::records(kind))
    }

    fn outbox(&mut self) -> Result<&mut redb::Table<'t, u64, &'static [u8]>, StoreError> {
        lazy(self.index.tx, &mut self.outbox, tables::OUTBOX)
    }

    fn meta(&mut self) -> Result<&mut redb::Table<'t, &'static str, &'static [u8]>, StoreError> {
        lazy(self.index.tx, &mut self.meta, tables::META)
    }
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
    pub fn get<R: Record>(&mut self, id: RecordId) -> Result<Option<R>, StoreError> {
        let t = self.tables.records(R::KIND)?;
        let v = t.get(id.as_u128())?;
        v.map(|g| open_record::<R>(&self.keys, id.as_u128(), g.value())).transpose()
    }

    /// A record by id, or `NotFound`.
    pub fn require<R: Record>(&mut self, id: RecordId) -> Result<R, StoreError> {
        self.get::<R>(id)?.ok_or(StoreError::NotFound { kind: R::KIND, id })
    }

    /// The follow-up task made from a source, if any (sees this transaction's writes).
    pub fn followup_by_source(&mut self, dedup_key: &str) -> Result<Option<RecordId>, StoreError> {
        let idx = lazy(self.tx, &mut self.tables.index.followup_source, tables::IDX_FOLLOWUP_SOURCE)?;
        let blind = self.keys.blind("source", dedup_key);
        let v = idx.get(blind.as_str())?;
        Ok(v.map(|g| RecordId::from_u128(g.value())))
    }

    /// Bookings for the local days `from..=to` (sees this transaction's writes), in (day, session, slot) order.
    pub fn appointments_between(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<crate::model::Appointment>, StoreError> {
        self.tables.records(RecordKind::Appointment)?;
        lazy(self.tx, &mut self.tables.index.appointments, tables::IDX_APPOINTMENT_DAY)?;
        match (&self.tables.index.appointments, &self.tables.records[kind_slot(RecordKind::Appointment)]) {
            (Some(idx), Some(t)) => super::query::appointments_in(idx, t, &self.keys, from, to),
            _ => Err(StoreError::Meta("the booking tables could not be opened".into())),
        }
    }

    /// Ids of records of a kind whose business time lies in `[from, to)` (sees this transaction's writes).
    pub fn ids_between(&mut self, kind: RecordKind, from: Moment, to: Moment) -> Result<Vec<RecordId>, StoreError> {
        let idx = lazy(self.tx, &mut self.tables.index.time, tables::IDX_TIME)?;
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
    pub fn ids_by_phone(&mut self, kind: RecordKind, phone: &str) -> Result<Vec<RecordId>, StoreError> {
        let blind = self.keys.blind("phone", phone);
        let idx = lazy(self.tx, &mut self.tables.index.phone, tables::IDX_PHONE)?;
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
    pub fn attempts_of(&mut self, task: RecordId) -> Result<usize, StoreError> {
        let idx = lazy(self.tx, &mut self.tables.index.calls, tables::IDX_CALLS_BY_TASK)?;
        let k = task.as_u128();
        let n = idx.range((k, 0u128)..=(k, u128::MAX))?.count();
        Ok(n)
    }

    /// A case made from a feedback record, if any (open or closed).
    pub fn case_from_feedback(&mut self, feedback: RecordId) -> Result<Option<RecordId>, StoreError> {
        let t = self.tables.records(RecordKind::Case)?;
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
    pub fn open_followup_ids_due(&mut self, until: NaiveDate) -> Result<Vec<RecordId>, StoreError> {
        let idx = lazy(self.tx, &mut self.tables.index.followup_due, tables::IDX_FOLLOWUP_OPEN_DUE)?;
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
            None => read_chain_pos(self.tables.meta()?, head_key)?,
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
            let sealed = self.keys.seal(&record_place(tables::records(kind).name(), id), &stored)?;
            let old = self.tables.records(kind)?.insert(id, sealed.as_slice())?;
            old.map(|g| open_any(&self.keys, kind, id, g.value())).transpose()?
        };
        self.tables.index.update(old.as_ref(), rec, self.offset, &self.keys, true)?;
        let seq = match self.next_seq {
            Some(s) => s,
            None => read_u64(self.tables.meta()?, meta::NEXT_SEQ)?,
        };
        let stamp = self.stamp();
        let op = Op { seq, key: RecordKey { kind: kind.code(), id }, schema: RECORD_SCHEMA, stamp, payload };
        let sealed = self.keys.seal(&outbox_place(seq), &codec::encode(&op)?)?;
        self.tables.outbox()?.insert(seq, sealed.as_slice())?;
        self.next_seq = Some(seq + 1);
        Ok(())
    }

    /// Writes the clock, the next sequence number and the chain heads; the caller commits.
    fn finish(mut self) -> Result<HlcClock, StoreError> {
        let m = self.tables.meta()?;
        m.insert(meta::HLC, codec::encode(&self.clock.last())?.as_slice())?;
        if let Some(s) = self.next_seq {
            m.insert(meta::NEXT_SEQ, s.to_le_bytes().as_slice())?;
        }
        for (kind, head) in &self.chain_heads {
            m.insert(chain_keys(*kind)?.0, codec::encode(head)?.as_slice())?;
        }
        Ok(self.clock)
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
    /// For a catch-up page: the phone and name entries go here instead of their tables (see `store::backlog`).
    pub(super) deferred: Option<Vec<BlindOp>>,
}

/// A record kind's place in per-kind arrays of open tables (kind code − 1, by [`RecordKind::ALL`]).
pub(super) fn kind_slot(kind: RecordKind) -> usize {
    RecordKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// The table in `slot`, opened from `def` the first time.
pub(super) fn lazy<'s, 't, K: redb::Key + 'static, V: redb::Value + 'static>(
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
            deferred: None,
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
        let none = Entries::default();
        if insert { self.change(&none, &e, Some(rec), strict) } else { self.change(&e, &none, Some(rec), strict) }
    }

    /// Moves a record's index entries from what `old` contributed to what `new` contributes (see
    /// [`index_apply_with`] for `strict`). Only the entries that differ are touched: a record changed in place —
    /// an arrival moving along the board, a task called — keeps its blind name and phone entries where they are,
    /// instead of removing and re-inserting them in B-tree leaves all over the file.
    pub(super) fn update(
        &mut self,
        old: Option<&AnyRecord>,
        new: &AnyRecord,
        offset: FixedOffset,
        keys: &Keys,
        strict: bool,
    ) -> Result<(), StoreError> {
        let before = old.map_or_else(Entries::default, |o| entries(o, offset, keys));
        self.change(&before, &entries(new, offset, keys), Some(new), strict)
    }

    /// Removes the entries of `old` that `new` lacks and inserts those of `new` that `old` lacks. `rec` is the
    /// record `new` describes (or `old`, for a removal), for the follow-up source's conflict message (which names
    /// the source by its index key without it).
    pub(super) fn change(
        &mut self,
        old: &Entries,
        new: &Entries,
        rec: Option<&AnyRecord>,
        strict: bool,
    ) -> Result<(), StoreError> {
        let tx = self.tx;
        macro_rules! one {
            ($slot:expr, $def:expr, $old:expr, $new:expr) => {{
                if $old != $new {
                    if let Some(k) = $old {
                        lazy(tx, &mut $slot, $def)?.remove(k)?;
                    }
                    if let Some(k) = $new {
                        lazy(tx, &mut $slot, $def)?.insert(k, ())?;
                    }
                }
            }};
        }
        macro_rules! many {
            ($slot:expr, $def:expr, $old:expr, $new:expr) => {{
                for (b, k, i) in $old.iter().filter(|x| !$new.contains(x)) {
                    lazy(tx, &mut $slot, $def)?.remove((b.as_str(), *k, *i))?;
                }
                for (b, k, i) in $new.iter().filter(|x| !$old.contains(x)) {
                    lazy(tx, &mut $slot, $def)?.insert((b.as_str(), *k, *i), ())?;
                }
            }};
        }
        one!(self.time, tables::IDX_TIME, old.time, new.time);
        one!(self.day_step, tables::IDX_ARRIVAL_DAY_STEP, old.day_step, new.day_step);
        if let Some(d) = &mut self.deferred {
            for (table, old, new) in
                [(BlindTable::Phone, &old.phones, &new.phones), (BlindTable::Name, &old.names, &new.names)]
            {
                for (b, k, i) in old.iter().filter(|x| !new.contains(x)) {
                    d.push(BlindOp::new(table, b, *k, *i, false)?);
                }
                for (b, k, i) in new.iter().filter(|x| !old.contains(x)) {
                    d.push(BlindOp::new(table, b, *k, *i, true)?);
                }
            }
        } else {
            many!(self.phone, tables::IDX_PHONE, old.phones, new.phones);
            many!(self.name, tables::IDX_NAME, old.names, new.names);
        }
        one!(self.case_due, tables::IDX_CASE_OPEN_DUE, old.case_due, new.case_due);
        one!(self.followup_due, tables::IDX_FOLLOWUP_OPEN_DUE, old.followup_due, new.followup_due);
        one!(self.calls, tables::IDX_CALLS_BY_TASK, old.call_by_task, new.call_by_task);
        one!(self.consultations, tables::IDX_CONSULTATION_ARRIVAL, old.consultation_arrival, new.consultation_arrival);
        one!(self.appointments, tables::IDX_APPOINTMENT_DAY, old.appointment_day, new.appointment_day);
        // A record whose source is unchanged leaves the source index as it is: the entry was settled when the
        // record was first stored (it may name another task, for a duplicate kept beside it).
        if old.followup_source == new.followup_source {
            return Ok(());
        }
        let t = lazy(tx, &mut self.followup_source, tables::IDX_FOLLOWUP_SOURCE)?;
        // The source index names one task per source: the old record's entry goes only if it names this record,
        // and the new one is taken only where no other task holds the source (or, not `strict`, a later one does).
        if let Some((s, id)) = &old.followup_source
            && t.get(s.as_str())?.map(|g| g.value()) == Some(*id)
        {
            t.remove(s.as_str())?;
        }
        if let Some((s, id)) = &new.followup_source {
            let existing = t.get(s.as_str())?.map(|g| g.value());
            match existing {
                Some(other) if other != *id && strict => {
                    let source = match rec {
                        Some(AnyRecord::FollowupTask(t)) => t.source.dedup_key(),
                        _ => s.clone(),
                    };
                    return Err(StoreError::Conflict(format!("a follow-up task already exists for source {source}")));
                }
                Some(other) if other <= *id => {}
                _ => {
                    t.insert(s.as_str(), *id)?;
                }
            }
        }
        Ok(())
    }
}
