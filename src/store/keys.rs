//! The store key in use: which key file and key id, sealing values kept outside the store (the HQ credential),
//! and rotation (re-sealing every record, op and staff value under a new key in one transaction).
//!
//! Resolving the key at open (missing, wrong or pending key files) is `open.rs`; the cipher and key files
//! themselves are `crypto.rs`.

use std::path::Path;
use std::sync::Arc;

use redb::{ReadableTable, TableHandle as _, WriteTransaction};

use super::crypto::{self, StoreKey, outbox_place, record_place};
use super::tables::{self, meta};
use super::{REFERENCE_SNAPSHOT, Store, StoreError, verify::rebuild_indexes_in};
use crate::model::RecordKind;

impl Store {
    /// The key file this store was opened with.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The id of the key the store is encrypted with.
    pub fn key_id(&self) -> u32 {
        self.keys().id()
    }

    /// Re-encrypts the store with a new random key and replaces the key file; returns the new key id.
    ///
    /// Crash-safe order: the new key is written to `<key file>.new` and synced, then every record and outbox op is
    /// re-sealed and the blind indexes rebuilt in one durable transaction, then the new file is renamed over the
    /// old one. If the process dies in between, the next open finds the store's key in whichever of the two files
    /// holds it and finishes the rename.
    pub fn rotate_key(&self) -> Result<u32, StoreError> {
        let guard = self.hlc.lock().map_err(|_| StoreError::Meta("clock lock poisoned by a panic".into()))?;
        let old = self.keys();
        let new_key = StoreKey::generate()?;
        let new = new_key.derive();
        let pending = crypto::pending_key_path(&self.key_path);
        if pending.exists() {
            std::fs::remove_file(&pending).map_err(|source| crypto::KeyError::Io { path: pending.clone(), source })?;
        }
        new_key.write_new(&pending)?;
        let mut tx = self.db.begin_write()?;
        for kind in RecordKind::ALL {
            let def = tables::records(kind);
            let mut t = tx.open_table(def)?;
            let mut all = Vec::new();
            for e in t.iter()? {
                let (k, v) = e?;
                let place = record_place(def.name(), k.value());
                all.push((k.value(), old.open(&place, v.value())?));
            }
            for (id, plain) in all {
                let sealed = new.seal(&record_place(def.name(), id), &plain)?;
                t.insert(id, sealed.as_slice())?;
            }
        }
        {
            let mut ob = tx.open_table(tables::OUTBOX)?;
            let mut all = Vec::new();
            for e in ob.iter()? {
                let (k, v) = e?;
                all.push((k.value(), old.open(&outbox_place(k.value()), v.value())?));
            }
            for (seq, plain) in all {
                ob.insert(seq, new.seal(&outbox_place(seq), &plain)?.as_slice())?;
            }
        }
        rebuild_indexes_in(&tx, self.offset, &new)?;
        reseal_staff_in(&tx, &|place, v| new.seal(place, &old.open(place, v)?))?;
        tx.open_table(tables::META)?.insert(meta::KEY_CHECK, new.check_value().as_slice())?;
        // Secrets sealed outside the store (the HQ credential) get a copy sealed with the new key before the commit,
        // so they open whichever key the store ends up with.
        for f in crypto::SEALED_FIELDS {
            crypto::reseal_field_prepare(self.data_dir(), f, &old, &new)?;
        }
        tx.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Meta(e.to_string()))?;
        // The rebuild above covers a catch-up's pending index entries (see `store::backlog`).
        let mut backlog = self.backlog()?;
        tx.commit()?;
        backlog.clear();
        drop(backlog);
        let id = new.id();
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(new);
        }
        std::fs::rename(&pending, &self.key_path)
            .map_err(|source| crypto::KeyError::Io { path: self.key_path.clone(), source })?;
        for f in crypto::SEALED_FIELDS {
            // Best effort: a reader finds the value sealed with the new key under its `next` field either way.
            let _ = crypto::reseal_field_finish(self.data_dir(), f, &self.keys());
        }
        drop(guard);
        Ok(id)
    }

    /// Seals `plain` with the store key for `place` (the associated data naming where it is kept), for secrets kept
    /// outside the store such as the HQ credential in `hq.json`.
    pub fn seal_value(&self, place: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys().seal(place, plain)
    }

    /// Opens a value sealed by [`Store::seal_value`] for `place`.
    pub fn open_value(&self, place: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys().open(place, sealed)
    }
}

/// Turns a stored value at a place (`crypto::LOCAL_STAFF_PLACE`, …) into the value to store instead.
pub(crate) type Reseal<'a> = &'a dyn Fn(&str, &[u8]) -> Result<Vec<u8>, StoreError>;

/// Rewrites the two values that hold staff PIN hashes — this kiosk's accounts (`meta.local_staff`) and the
/// reference-data snapshot — with `f(place, stored)`, inside `tx` (key rotation, the schema-4 migration).
pub(crate) fn reseal_staff_in(tx: &WriteTransaction, f: Reseal<'_>) -> Result<(), StoreError> {
    {
        let mut m = tx.open_table(tables::META)?;
        let v = m.get(meta::LOCAL_STAFF)?.map(|g| g.value().to_vec());
        if let Some(v) = v {
            m.insert(meta::LOCAL_STAFF, f(crypto::LOCAL_STAFF_PLACE, &v)?.as_slice())?;
        }
    }
    let mut t = tx.open_table(tables::REFERENCE)?;
    let v = t.get(REFERENCE_SNAPSHOT)?.map(|g| g.value().to_vec());
    if let Some(v) = v {
        t.insert(REFERENCE_SNAPSHOT, f(crypto::REFERENCE_PLACE, &v)?.as_slice())?;
    }
    Ok(())
}
