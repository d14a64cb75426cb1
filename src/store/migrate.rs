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
pub const STORE_SCHEMA: u32 = 8;

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
    Migration { to: 4, name: "seal staff PIN hashes at rest", run: seal_staff },
    Migration { to: 5, name: "hold records other desks of the site wrote", run: add_replicas },
    Migration { to: 6, name: "add call claims (who is calling a follow-up task)", run: add_call_claims },
    Migration { to: 7, name: "add appointments and their day index", run: add_appointments },
    Migration { to: 8, name: "add the shift log", run: add_shift_log },
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
    tx.open_table(tables::IDX_APPOINTMENT_DAY)?;
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

/// Schema 3: the hash-chained audit log (its record table; its chain head starts empty).
fn add_audit_log(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::records(RecordKind::Audit))?;
    Ok(())
}

/// Schema 4: seals the two values that hold staff PIN hashes — this kiosk's accounts (`meta.local_staff`) and the
/// reference-data snapshot (HQ's staff) — with the store key, bound to their place. The plaintext pages are freed
/// by this transaction and the store compacts the file after the commit, as for schema 2.
fn seal_staff(tx: &WriteTransaction, env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    super::reseal_staff_in(tx, &|place, stored| {
        if crypto::is_sealed(stored) { Ok(stored.to_vec()) } else { env.keys.seal(place, stored) }
    })
}

/// Schema 5: the table naming the origin of records other desks of the site wrote (`tables::REPLICAS`).
fn add_replicas(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::REPLICAS)?;
    Ok(())
}

/// Schema 6: the record table of call claims (the shared follow-up worklist's "being called by").
fn add_call_claims(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::records(RecordKind::CallClaim))?;
    Ok(())
}

/// Schema 7: the record table of appointments and their day index (`tables::IDX_APPOINTMENT_DAY`).
fn add_appointments(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::records(RecordKind::Appointment))?;
    tx.open_table(tables::IDX_APPOINTMENT_DAY)?;
    Ok(())
}

/// Schema 8: the record table of the shift log (handovers and daily logs).
fn add_shift_log(tx: &WriteTransaction, _env: &MigrationEnv<'_>) -> Result<(), StoreError> {
    tx.open_table(tables::records(RecordKind::ShiftLog))?;
    Ok(())
}

/// Reads the schema version (0 for a store with no version yet).
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHasher as _, SaltString};

    use redb::ReadableDatabase as _;

    use super::super::{ManualClock, REFERENCE_SNAPSHOT, Store, StoreOptions, china_offset};
    use super::*;
    use crate::model::reference::{Role, Staff};
    use crate::model::{Moment, ReferenceData};

    fn opts() -> StoreOptions {
        StoreOptions { clock: Arc::new(ManualClock::new(Moment(1_795_399_200_000))), utc_offset: china_offset() }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    /// A PIN hash made as GuideDesk made them before: argon2 0.5's defaults (m = 19 MiB, t = 2).
    fn old_hash(pin: &str) -> String {
        argon2::Argon2::default().hash_password(pin.as_bytes(), &SaltString::generate(&mut OsRng)).unwrap().to_string()
    }

    fn staff(id: &str, role: Role, pin_hash: &str) -> Staff {
        Staff { id: id.into(), name: "王芳".into(), role, department: None, pin_hash: pin_hash.into(), active: true }
    }

    /// Puts the staff values back the way schema 3 stored them: plaintext JSON, schema 3.
    fn downgrade_to_v3(store: Store) {
        let keys = store.keys();
        let tx = store.db.begin_write().unwrap();
        super::super::reseal_staff_in(&tx, &|place, v| keys.open(place, v)).unwrap();
        tx.open_table(tables::META).unwrap().insert(meta::SCHEMA, 3u32.to_le_bytes().as_slice()).unwrap();
        tx.commit().unwrap();
        drop(store);
    }

    #[test]
    fn migration_4_seals_staff_pin_hashes_of_an_existing_store_and_old_hashes_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let hash = old_hash("2580");
        let store = Store::open_with(dir.path(), opts()).unwrap();
        store.put_local_staff(staff("A001", Role::Administrator, &hash)).unwrap();
        let mut refs = ReferenceData::bundled().unwrap();
        refs.staff = vec![staff("D001", Role::Guide, &hash)];
        store.apply_reference(refs, "hq").unwrap();
        let path = store.path().to_path_buf();
        downgrade_to_v3(store);
        // The fixture really is schema 3 with PIN hashes in clear (otherwise this test could not fail).
        assert!(contains(&std::fs::read(&path).unwrap(), b"$argon2id$"));

        let store = Store::open_with(dir.path(), opts()).unwrap();
        assert_eq!(store.stats().unwrap().schema, STORE_SCHEMA);
        {
            let tx = store.db.begin_read().unwrap();
            let m = tx.open_table(tables::META).unwrap();
            assert!(crypto::is_sealed(m.get(meta::LOCAL_STAFF).unwrap().unwrap().value()));
            let r = tx.open_table(tables::REFERENCE).unwrap();
            assert!(crypto::is_sealed(r.get(REFERENCE_SNAPSHOT).unwrap().unwrap().value()));
        }
        let all = store.all_staff().unwrap();
        assert_eq!(all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["D001", "A001"]);
        assert!(all.iter().all(|s| crate::staff::verify_pin(&s.pin_hash, "2580")), "old hashes still verify");
        drop(store);
        assert!(!contains(&std::fs::read(&path).unwrap(), b"$argon2"), "a PIN hash left in the file");
        // Opening again changes nothing.
        let store = Store::open_with(dir.path(), opts()).unwrap();
        assert_eq!(store.all_staff().unwrap(), all);
    }

    #[test]
    fn sealed_staff_values_are_bound_to_their_place_and_survive_a_key_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), opts()).unwrap();
        store.put_local_staff(staff("A001", Role::Administrator, &old_hash("2580"))).unwrap();
        let mut refs = ReferenceData::bundled().unwrap();
        refs.staff = vec![staff("D001", Role::Guide, &old_hash("1234"))];
        store.apply_reference(refs, "hq").unwrap();
        store.rotate_key().unwrap();
        let all = store.all_staff().unwrap();
        drop(store);
        let store = Store::open_with(dir.path(), opts()).unwrap();
        assert_eq!(store.all_staff().unwrap(), all);
        // The local accounts' sealed value copied over the reference snapshot fails authentication, naming it.
        let tx = store.db.begin_write().unwrap();
        let local = tx.open_table(tables::META).unwrap().get(meta::LOCAL_STAFF).unwrap().unwrap().value().to_vec();
        tx.open_table(tables::REFERENCE).unwrap().insert(REFERENCE_SNAPSHOT, local.as_slice()).unwrap();
        tx.commit().unwrap();
        drop(store);
        let e = Store::open_with(dir.path(), opts()).unwrap_err().to_string();
        assert!(e.contains("reference data cannot be read") && e.contains("reference snapshot"), "{e}");
    }

    #[test]
    fn a_local_pin_hash_made_with_the_old_parameters_is_upgraded_at_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), opts()).unwrap();
        let old = old_hash("2580");
        store.put_local_staff(staff("A001", Role::Administrator, &old)).unwrap();
        assert!(!store.upgrade_local_pin_hash("A001", "0000").unwrap(), "a wrong PIN changes nothing");
        assert!(!store.upgrade_local_pin_hash("X999", "2580").unwrap(), "no such local account");
        assert_eq!(store.local_staff().unwrap()[0].pin_hash, old);
        assert!(store.upgrade_local_pin_hash("A001", "2580").unwrap());
        let new = store.local_staff().unwrap()[0].pin_hash.clone();
        assert!(new.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{new}");
        assert!(crate::staff::verify_pin(&new, "2580"));
        assert!(!store.upgrade_local_pin_hash("A001", "2580").unwrap(), "already current");
    }
}
