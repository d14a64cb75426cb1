//! The blind-index backlog of a catch-up: the phone and name-prefix index entries of pulled pages, moved into their
//! tables in key order once the run of pages ends.
//!
//! The phone and name indexes are keyed by keyed hashes, so the entries of consecutive records land all over their
//! B-trees: a new desk taking in its site's year through transactions of 10 000 records rewrote nearly every leaf of
//! both trees in every transaction. A page applied as part of a catch-up ([`Store::apply_remote_catch_up`]) writes
//! its records, every other index and its cursor as before, but keeps its phone and name entries here, in memory, in
//! the order they were made. The backlog goes into the tables, sorted by key so each leaf is written once per
//! settling:
//! - when the catch-up ends ([`Store::settle_blind_backlog`], called after every sync cycle);
//! - inside the next transaction of any other writer (a registration, a page that is not part of a catch-up, a
//!   purge), before its own changes, so the tables are exact whenever anything else writes them;
//! - inside a catch-up page once the backlog would pass [`BACKLOG_MAX_OPS`] entries (memory stays bounded).
//!
//! Catch-up pages commit without waiting for the disk (`Durability::None`): a power cut takes back the pages since the
//! last durable commit with their cursor, so they are pulled again. Settling commits are durable.
//!
//! Every transaction that leaves entries in the backlog sets [`meta::BLIND_BACKLOG`]; the one that settles them
//! clears it. A store opened with the mark set (the process ended during a catch-up) rebuilds its indexes from the
//! records before anything reads them. Lookups by phone and name lay the backlog over the tables, so they are exact
//! during a catch-up too; the backlog's lock is held across every commit that adds to it or settles it (with the
//! change to the in-memory list) and across each reader's snapshot, so a reader sees an entry either in the tables or
//! in the backlog.

use std::sync::MutexGuard;

use redb::{ReadableTable, WriteTransaction};

use super::write::lazy;
use super::{Store, StoreError, crypto, tables};
use tables::meta;

/// Entries kept in memory at most before a catch-up page settles them (36 bytes each: 36 MiB). A site's year
/// (300 000 records, about a million entries) settles once, at the end of the run.
pub const BACKLOG_MAX_OPS: usize = 1_050_000;

/// Which blind index an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum BlindTable {
    Phone,
    Name,
}

/// One change to a blind index: insert or remove `(key, kind, id)`, packed: the blind key's 16 bytes (its 32 hex
/// digits decoded), the id big-endian (byte order is numeric order, as hex order is the bytes' order), the kind,
/// and the table and the direction in one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BlindOp {
    key: [u8; 16],
    id: [u8; 16],
    kind: u16,
    flags: u8,
}

const NAME: u8 = 1;
const INSERT: u8 = 2;

impl BlindOp {
    /// The op for an index entry whose key is a blind key (32 hex digits).
    pub(super) fn new(table: BlindTable, key: &str, kind: u16, id: u128, insert: bool) -> Result<BlindOp, StoreError> {
        let bad = || StoreError::Meta(format!("a blind index key that is not 32 hex digits ({} bytes)", key.len()));
        let bytes: [u8; 16] = crypto::unhex(key).and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
        let flags = (u8::from(table == BlindTable::Name) * NAME) | (u8::from(insert) * INSERT);
        Ok(BlindOp { key: bytes, id: id.to_be_bytes(), kind, flags })
    }

    pub(super) fn table(&self) -> BlindTable {
        if self.flags & NAME == 0 { BlindTable::Phone } else { BlindTable::Name }
    }

    pub(super) fn insert(&self) -> bool {
        self.flags & INSERT != 0
    }

    pub(super) fn kind(&self) -> u16 {
        self.kind
    }

    pub(super) fn id(&self) -> u128 {
        u128::from_be_bytes(self.id)
    }

    /// The blind key as stored in the index: 32 lowercase hex digits.
    pub(super) fn key_hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        crypto::hex_into(&self.key, &mut out);
        out
    }

    pub(super) fn sort_key(&self) -> (bool, &[u8; 16], u16, &[u8; 16]) {
        (self.flags & NAME != 0, &self.key, self.kind, &self.id)
    }
}

/// The backlog's ops, oldest first.
pub(super) type Backlog = Vec<BlindOp>;

/// Writes `ops` (oldest first) into the phone and name tables in key order — a stable sort keeps the order of the
/// ops on one entry — and clears the backlog mark, inside `tx`.
pub(super) fn settle_in(tx: &WriteTransaction, ops: &[BlindOp]) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&BlindOp> = ops.iter().collect();
    sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut phone = None;
    let mut name = None;
    for op in sorted {
        let t = match op.table() {
            BlindTable::Phone => lazy(tx, &mut phone, tables::IDX_PHONE)?,
            BlindTable::Name => lazy(tx, &mut name, tables::IDX_NAME)?,
        };
        let hex = op.key_hex();
        let k = (std::str::from_utf8(&hex).map_err(|e| StoreError::Meta(e.to_string()))?, op.kind(), op.id());
        if op.insert() {
            t.insert(k, ())?;
        } else {
            t.remove(k)?;
        }
    }
    tx.open_table(tables::META)?.remove(meta::BLIND_BACKLOG)?;
    Ok(())
}

/// Marks, inside `tx`, that the backlog holds entries this transaction made.
pub(super) fn mark_in(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::META)?.insert(meta::BLIND_BACKLOG, [1u8].as_slice())?;
    Ok(())
}

/// Whether the store was left with a backlog that never reached its tables.
pub(super) fn marked(tx: &WriteTransaction) -> Result<bool, StoreError> {
    Ok(tx.open_table(tables::META)?.get(meta::BLIND_BACKLOG)?.is_some())
}

/// Lays the backlog's ops on `key` in `table` over `found` (ids by kind, from the table): inserts add, removes take
/// away, in the order they were made.
pub(super) fn overlay(ops: &[BlindOp], table: BlindTable, key: &str, found: &mut Vec<(u16, u128)>) {
    let Ok(probe) = BlindOp::new(table, key, 0, 0, false) else { return };
    for op in ops.iter().filter(|o| o.table() == table && o.key == probe.key) {
        let entry = (op.kind(), op.id());
        if op.insert() {
            if !found.contains(&entry) {
                found.push(entry);
            }
        } else {
            found.retain(|e| *e != entry);
        }
    }
}

impl Store {
    /// The backlog, locked.
    pub(super) fn backlog(&self) -> Result<MutexGuard<'_, Backlog>, StoreError> {
        self.blind_backlog.lock().map_err(|_| StoreError::Meta("blind-index backlog poisoned by a panic".into()))
    }

    /// Inside a writer's transaction (before its own changes): writes the backlog into the tables. Returns how many
    /// ops went in, for [`Store::commit_settled`] (if the transaction is abandoned, they simply stay).
    pub(super) fn settle_backlog_in(&self, tx: &WriteTransaction) -> Result<usize, StoreError> {
        let backlog = self.backlog()?;
        settle_in(tx, &backlog)?;
        Ok(backlog.len())
    }

    /// Commits a writer's transaction that settled the first `n` ops of the backlog and drops them from memory, the
    /// backlog's lock held across both: no other writer can settle or add ops in between (a write transaction is
    /// exclusive until the commit), and no reader sees the new tables with ops missing from both.
    pub(super) fn commit_settled(&self, tx: WriteTransaction, n: usize) -> Result<(), StoreError> {
        let mut backlog = self.backlog()?;
        tx.commit()?;
        let n = n.min(backlog.len());
        backlog.drain(..n);
        Ok(())
    }

    /// Writes the phone and name entries of a catch-up into their tables, in one durable transaction (see the
    /// module docs). Returns how many changes went in; 0 when there was nothing to do.
    pub fn settle_blind_backlog(&self) -> Result<usize, StoreError> {
        if self.backlog()?.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.begin_write()?;
        let n = self.settle_backlog_in(&tx)?;
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        self.commit_settled(tx, n)?;
        Ok(n)
    }

    /// How many blind-index changes of a catch-up wait to be settled.
    #[cfg(test)]
    pub(super) fn blind_backlog_len(&self) -> usize {
        self.backlog().map_or(0, |b| b.len())
    }
}
