//! Verification and repair: [`Store::check`] (every record decodes, every index equals the one recomputed from the
//! records, the outbox is gap-free, the hash chains are unbroken), chain verification ([`ChainProblem`]) and
//! rebuilding the indexes from the records.
//!
//! Which index entries a record has is decided by the write path (`write.rs`); this module only compares and
//! rebuilds.

use chrono::FixedOffset;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::backlog::BlindTable;
use super::crypto::Keys;
use super::tables::{self, meta};
use super::write::{entries, index_apply_with};
use super::{Store, StoreError, backup, migrate, open_any, open_op, read_u64};
use crate::model::{AnyRecord, AuditEntry, Chained, Feedback, Record, RecordId, RecordKind};

impl Store {
    /// Verifies the store: every record decodes; every secondary index equals the one recomputed from the records;
    /// the outbox is gap-free from 1 to the last sequence number and holds one op per record write; the feedback
    /// chain is unbroken. Returns the problems found (empty when healthy).
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let expected = self.recompute_indexes(&mut problems)?;
        let backlog = self.backlog()?;
        let tx = self.read()?;
        let mut actual = read_indexes(&tx)?;
        // A catch-up's entries not yet in their tables count as there (see `store::backlog`).
        for op in backlog.iter() {
            let set = match op.table() {
                BlindTable::Phone => &mut actual.phones,
                BlindTable::Name => &mut actual.names,
            };
            let entry = (String::from_utf8_lossy(&op.key_hex()).into_owned(), op.kind(), op.id());
            if op.insert() {
                set.insert(entry);
            } else {
                set.remove(&entry);
            }
        }
        drop(backlog);
        for (name, exp, act) in expected.compare(&actual) {
            problems.push(format!("index {name}: expected {exp} entries matching the records, found {act}"));
        }
        let m = tx.open_table(tables::META)?;
        let next = read_u64(&m, meta::NEXT_SEQ)?;
        let ob = tx.open_table(tables::OUTBOX)?;
        let mut expect = ob.first()?.map_or(next, |(k, _)| k.value());
        let acked = read_u64(&m, meta::ACKED_SEQ)?;
        if expect > acked.saturating_add(1) {
            problems.push(format!("outbox starts at seq {expect} but only {acked} were acknowledged"));
        }
        let jumps = backup::read_jumps(&m)?;
        for e in ob.iter()? {
            let (k, v) = e?;
            if k.value() != expect && !jumps.contains(&(expect, k.value())) {
                problems.push(format!("outbox gap: expected seq {expect}, found {}", k.value()));
            }
            match open_op(&self.keys(), k.value(), v.value()) {
                Ok(op) if op.seq == k.value() => {}
                Ok(op) => problems.push(format!("outbox entry {} holds op seq {}", k.value(), op.seq)),
                Err(e) => problems.push(format!("outbox entry {} cannot be decoded: {e}", k.value())),
            }
            expect = k.value() + 1;
        }
        if expect != next && !jumps.contains(&(expect, next)) {
            problems.push(format!("outbox ends at {} but the next seq is {next}", expect.saturating_sub(1)));
        }
        drop((m, ob, tx));
        problems.extend(self.verify_feedback_chain()?.into_iter().map(|p| format!("feedback {p}")));
        problems.extend(self.verify_chain::<AuditEntry>()?.into_iter().map(|p| format!("audit log {p}")));
        problems.extend(self.verify_replica_chains()?);
        Ok(problems)
    }

    /// Verifies the feedback hash chain ([`Store::verify_chain`]).
    pub fn verify_feedback_chain(&self) -> Result<Vec<ChainProblem>, StoreError> {
        self.verify_chain::<Feedback>()
    }

    /// Verifies a hash chain against its stored head: reports missing positions (deleted records), altered records
    /// (hash mismatch), broken links and a head that does not match the last record.
    pub fn verify_chain<R: Chained>(&self) -> Result<Vec<ChainProblem>, StoreError> {
        let chain = self.chain::<R>()?;
        let (next, head_hash) = self.chain_head(R::KIND)?;
        let mut problems = Vec::new();
        // Records purged by retention are a prefix of the chain; verification starts after it.
        let (mut expected, mut prev) = self.chain_base(R::KIND)?;
        for f in &chain {
            let (index, id) = (f.chain_index(), Record::id(f));
            while expected < index {
                problems.push(ChainProblem::Missing { index: expected });
                expected += 1;
                prev = [0xff; 32];
            }
            if f.compute_hash() != f.hash() {
                problems.push(ChainProblem::Altered { index, id });
            } else if f.prev_hash() != prev && prev != [0xff; 32] {
                problems.push(ChainProblem::BrokenLink { index, id });
            }
            prev = f.hash();
            expected = index + 1;
        }
        while expected < next {
            problems.push(ChainProblem::Missing { index: expected });
            expected += 1;
        }
        if next > 0 && chain.last().is_some_and(|f| f.chain_index() + 1 == next && f.hash() != head_hash) {
            problems.push(ChainProblem::HeadMismatch);
        }
        if expected > next {
            problems.push(ChainProblem::HeadMismatch);
        }
        Ok(problems)
    }

    fn recompute_indexes(&self, problems: &mut Vec<String>) -> Result<IndexSet, StoreError> {
        let tx = self.read()?;
        let mut set = IndexSet::default();
        let keys = self.keys();
        for kind in RecordKind::ALL {
            let t = tx.open_table(tables::records(kind))?;
            for e in t.iter()? {
                let (k, v) = e?;
                match open_any(&keys, kind, k.value(), v.value()) {
                    Ok(rec) => {
                        if rec.id().as_u128() != k.value() {
                            problems.push(format!("{kind} {} is stored under key {:x}", rec.id(), k.value()));
                        }
                        set.add(&rec, self.offset, &keys);
                    }
                    Err(e) => problems.push(format!("{kind} record {:x} cannot be decoded: {e}", k.value())),
                }
            }
        }
        Ok(set)
    }

    /// Drops and rebuilds every secondary index from the records (repair, and migrations that change indexes).
    pub fn rebuild_indexes(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        rebuild_indexes_in(&tx, self.offset, &self.keys())?;
        // The rebuild covers a catch-up's pending entries too; the lock spans the commit (see `store::backlog`).
        let mut backlog = self.backlog()?;
        tx.commit()?;
        backlog.clear();
        Ok(())
    }
}

/// A problem in a hash chain (feedback, audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    /// No record at this position: a record was deleted.
    Missing {
        /// Chain position.
        index: u64,
    },
    /// The record's content does not match its hash: it was altered.
    Altered {
        /// Chain position.
        index: u64,
        /// Record id.
        id: RecordId,
    },
    /// The record does not commit to its predecessor's hash: the chain was spliced.
    BrokenLink {
        /// Chain position.
        index: u64,
        /// Record id.
        id: RecordId,
    },
    /// The stored chain head does not match the last record.
    HeadMismatch,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Missing { index } => write!(f, "#{index} is missing (deleted)"),
            ChainProblem::Altered { index, id } => write!(f, "#{index} ({id}) was altered"),
            ChainProblem::BrokenLink { index, id } => {
                write!(f, "#{index} ({id}) does not follow the previous record")
            }
            ChainProblem::HeadMismatch => f.write_str("chain head does not match the last record"),
        }
    }
}

/// Index contents as sets, for consistency checks.
#[derive(Default, PartialEq, Eq)]
struct IndexSet {
    time: std::collections::BTreeSet<(u16, i64, u128)>,
    day_step: std::collections::BTreeSet<(i32, u8, u128)>,
    phones: std::collections::BTreeSet<(String, u16, u128)>,
    names: std::collections::BTreeSet<(String, u16, u128)>,
    case_due: std::collections::BTreeSet<(i32, u128)>,
    followup_due: std::collections::BTreeSet<(i32, u128)>,
    /// Source → the smallest id of the tasks made from it (the one the index names).
    followup_source: std::collections::BTreeMap<String, u128>,
    call_by_task: std::collections::BTreeSet<(u128, u128)>,
    consultation_arrival: std::collections::BTreeSet<(u128, u128)>,
    appointment_day: std::collections::BTreeSet<(i32, u8, u128)>,
}

impl IndexSet {
    fn add(&mut self, rec: &AnyRecord, offset: FixedOffset, keys: &Keys) {
        let e = entries(rec, offset, keys);
        self.time.extend(e.time);
        self.day_step.extend(e.day_step);
        self.phones.extend(e.phones);
        self.names.extend(e.names);
        self.case_due.extend(e.case_due);
        self.followup_due.extend(e.followup_due);
        if let Some((src, id)) = e.followup_source {
            let slot = self.followup_source.entry(src).or_insert(id);
            *slot = (*slot).min(id);
        }
        self.call_by_task.extend(e.call_by_task);
        self.consultation_arrival.extend(e.consultation_arrival);
        self.appointment_day.extend(e.appointment_day);
    }

    /// (index name, expected count, actual count) for every index whose contents differ.
    fn compare(&self, actual: &IndexSet) -> Vec<(&'static str, usize, usize)> {
        let mut out = Vec::new();
        macro_rules! cmp {
            ($f:ident, $name:expr) => {
                if self.$f != actual.$f {
                    out.push(($name, self.$f.len(), actual.$f.len()));
                }
            };
        }
        cmp!(time, "idx_time");
        cmp!(day_step, "idx_arrival_day_step");
        cmp!(phones, "idx_phone");
        cmp!(names, "idx_name");
        cmp!(case_due, "idx_case_open_due");
        cmp!(followup_due, "idx_followup_open_due");
        cmp!(followup_source, "idx_followup_source");
        cmp!(call_by_task, "idx_calls_by_task");
        cmp!(consultation_arrival, "idx_consultation_arrival");
        cmp!(appointment_day, "idx_appointment_day");
        out
    }
}

fn read_indexes(tx: &ReadTransaction) -> Result<IndexSet, StoreError> {
    let mut s = IndexSet::default();
    for e in tx.open_table(tables::IDX_TIME)?.iter()? {
        s.time.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?.iter()? {
        s.day_step.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_PHONE)?.iter()? {
        let entry = e?;
        let (p, k, i) = entry.0.value();
        s.phones.insert((p.to_string(), k, i));
    }
    for e in tx.open_table(tables::IDX_NAME)?.iter()? {
        let entry = e?;
        let (p, k, i) = entry.0.value();
        s.names.insert((p.to_string(), k, i));
    }
    for e in tx.open_table(tables::IDX_CASE_OPEN_DUE)?.iter()? {
        s.case_due.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_FOLLOWUP_OPEN_DUE)?.iter()? {
        s.followup_due.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?.iter()? {
        let (k, v) = e?;
        s.followup_source.insert(k.value().to_string(), v.value());
    }
    for e in tx.open_table(tables::IDX_CALLS_BY_TASK)?.iter()? {
        s.call_by_task.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_CONSULTATION_ARRIVAL)?.iter()? {
        s.consultation_arrival.insert(e?.0.value());
    }
    for e in tx.open_table(tables::IDX_APPOINTMENT_DAY)?.iter()? {
        s.appointment_day.insert(e?.0.value());
    }
    Ok(s)
}

/// Drops and refills every secondary index from the records, inside `tx`.
pub fn rebuild_indexes_in(tx: &WriteTransaction, offset: FixedOffset, keys: &Keys) -> Result<(), StoreError> {
    for name in tables::INDEX_TABLES {
        // Typed handles are needed to delete; re-create each table empty.
        match name {
            "idx_time" => drop(tx.delete_table(tables::IDX_TIME)?),
            "idx_arrival_day_step" => drop(tx.delete_table(tables::IDX_ARRIVAL_DAY_STEP)?),
            "idx_phone" => drop(tx.delete_table(tables::IDX_PHONE)?),
            "idx_name" => drop(tx.delete_table(tables::IDX_NAME)?),
            "idx_case_open_due" => drop(tx.delete_table(tables::IDX_CASE_OPEN_DUE)?),
            "idx_followup_open_due" => drop(tx.delete_table(tables::IDX_FOLLOWUP_OPEN_DUE)?),
            "idx_followup_source" => drop(tx.delete_table(tables::IDX_FOLLOWUP_SOURCE)?),
            "idx_calls_by_task" => drop(tx.delete_table(tables::IDX_CALLS_BY_TASK)?),
            "idx_consultation_arrival" => drop(tx.delete_table(tables::IDX_CONSULTATION_ARRIVAL)?),
            _ => drop(tx.delete_table(tables::IDX_APPOINTMENT_DAY)?),
        }
    }
    migrate::create_index_tables(tx)?;
    tx.open_table(tables::META)?.remove(tables::meta::BLIND_BACKLOG)?;
    for kind in RecordKind::ALL {
        let mut recs = Vec::new();
        {
            let t = tx.open_table(tables::records(kind))?;
            for e in t.iter()? {
                let (k, v) = e?;
                recs.push(open_any(keys, kind, k.value(), v.value())?);
            }
        }
        for r in &recs {
            index_apply_with(tx, r, offset, keys, true, false)?;
        }
    }
    Ok(())
}
