//! Schema migrations, run in one write transaction when a store is opened.
//!
//! The schema version lives in the `meta` table. Opening a store whose version is lower than
//! [`STORE_SCHEMA`] applies each step above it in order; a higher version is refused (see
//! `OpenError::NewerSchema`). A step must leave the store fully consistent at its target version.

use chrono::FixedOffset;
use redb::{ReadableTable, TableHandle as _, WriteTransaction};

use super::crypto::{self, Keys};
use super::error::StoreError;
use super::tables::{self, meta};
use crate::model::RecordKind;

/// The schema version this build writes.
pub const STORE_SCHEMA: u32 = 3;

/// One migration step.
#[derive(Clone, Copy)]
pub struct Migration {
    /// The version the store has after this step.
    pub to: u32,
    /// What the step does (logged at open).
    pub name: &'static str,
    /// The step.
    pub run: fn(&WriteTransaction, &MigrationEnv<'_>) -> Result<(), StoreError>,
}

/// What a migration step may need besides the transaction.
#[derive(Debug, Clone, Copy)]
pub struct MigrationEnv<'a> {
    /// The site's UTC offset (index keys use local days).
    pub offset: FixedOffset,
    /// The store's keys (records are sealed, blind indexes are keyed).
    pub keys: &'a Keys,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Migration(to {}: {})", self.to, self.name)
    }
}

/// The production migration steps, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration { to: 1, name: "create tables", run: create_tables },
    Migration { to: 2, name: "encrypt records and outbox at rest", run: encrypt_at_rest },
    Migration { to: 3, name: "add the audit log", run: add_audit_log },
];

/// Creates every table of schema 1.
fn create_tables(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::META)?;
    tx.open_table(tables::OUTBOX)?;
    tx.open_table(tables::REFERENCE)?;
    for kind in RecordKind::ALL {
        tx.open_table(tables::records(kind))?;
    }
    create_index_tables(tx)
}

/// Creates every secondary index table that does not exist yet.
pub fn create_index_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(tables::IDX_TIME)?;
    tx.open_table(tables::IDX_ARRIVAL_DAY_STEP)?;
    tx.open_table(tables::IDX_PHONE)?;
    tx.open_table(tables::IDX_NAME)?;
    tx.open_table(tables::IDX_CASE_OPEN_DUE)?;
    tx.open_table(tables::IDX_FOLLOWUP_OPEN_DUE)?;
    tx.open_table(tables::IDX_FOLLOWUP_SOURCE)?;
    tx.open_table(tables::IDX_CALLS_BY_TASK)?;
    tx.open_table(tables::IDX_CONSULTATION_ARRIVAL)?;
    Ok(())
}

/// Schema 2: seals every plaintext record value and outbox op with the store key, then rebuilds the secondary
/// indexes with blind (keyed) phone, name and source keys. The plaintext pages are freed by this transaction; the
/// store compacts the file after the migration commits.
fn encrypt_at_rest(tx: &WriteTransaction, env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    for kind in RecordKind::ALL {
        let def = tables::records(kind);
        let mut t = tx.open_table(def)?;
        let mut plain: Vec<(u128, Vec<u8>)> = Vec::new();
        for e in t.iter()? {
            let (k, v) = e?;
            if !crypto::is_sealed(v.value()) {
                plain.push((k.value(), v.value().to_vec()));
            }
        }
        for (id, bytes) in plain {
            let sealed = env.keys.seal(&crypto::record_place(def.name(), id), &bytes)?;
            t.insert(id, sealed.as_slice())?;
        }
    }
    let mut ob = tx.open_table(tables::OUTBOX)?;
    let mut plain: Vec<(u64, Vec<u8>)> = Vec::new();
    for e in ob.iter()? {
        let (k, v) = e?;
        if !crypto::is_sealed(v.value()) {
            plain.push((k.value(), v.value().to_vec()));
        }
    }
    for (seq, bytes) in plain {
        ob.insert(seq, env.keys.seal(&crypto::outbox_place(seq), &bytes)?.as_slice())?;
    }
    drop(ob);
    super::rebuild_indexes_in(tx, env.offset, env.keys)
}

/// Reads the schema version (0 for a store with no version yet).
/// Schema 3: the hash-chained audit log (its record table; its chain head starts empty).
fn add_audit_log(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::records(RecordKind::Audit))?;
    Ok(())
}

pub fn schema_version(tx: &WriteTransaction) -> Result<u32, StoreError> {
    let t = tx.open_table(tables::META)?;
    let v = t.get(meta::SCHEMA)?;
    match v {
        None => Ok(0),
        Some(g) => {
            let b: [u8; 4] =
                g.value().try_into().map_err(|_| StoreError::Meta("schema version is not 4 bytes".into()))?;
            Ok(u32::from_le_bytes(b))
        }
    }
}

/// Applies every step of `steps` above the current version, recording the version after each. Returns the names
/// of the steps applied.
pub fn run(
    tx: &WriteTransaction,
    steps: &[Migration],
    env: &MigrationEnv<'_>,
) -> Result<Vec<&'static str>, StoreError> {
    let mut version = schema_version(tx)?;
    let mut applied = Vec::new();
    let start = version;
    for step in steps.iter().filter(|s| s.to > start) {
        if step.to != version + 1 {
            return Err(StoreError::Meta(format!("no migration from schema {version} to {}", version + 1)));
        }
        (step.run)(tx, env)?;
        version = step.to;
        tx.open_table(tables::META)?.insert(meta::SCHEMA, version.to_le_bytes().as_slice())?;
        applied.push(step.name);
    }
    Ok(applied)
}
