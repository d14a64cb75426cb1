//! This kiosk's own staff accounts (the first administrator, made before any sync), sealed in `meta`, and the list
//! of everyone who may sign in here (HQ's staff from the reference data, then the local accounts).
//!
//! PIN rules and hashing are `crate::staff`; counting wrong PINs is `lockout.rs`.

use super::tables::{self, meta};
use super::{Store, StoreError, crypto};
use crate::model::reference::Staff;

impl Store {
    /// Staff accounts created on this kiosk (the first administrator, before any sync). They are sealed with the
    /// store key (their PIN hashes must not be readable, or replaceable, without it).
    pub fn local_staff(&self) -> Result<Vec<Staff>, StoreError> {
        let tx = self.read()?;
        let m = tx.open_table(tables::META)?;
        let v = m.get(meta::LOCAL_STAFF)?;
        match v {
            Some(g) => {
                let plain = self.keys().open(crypto::LOCAL_STAFF_PLACE, g.value())?;
                serde_json::from_slice(&plain)
                    .map_err(|e| StoreError::Meta(format!("this kiosk's staff accounts cannot be read: {e}")))
            }
            None => Ok(Vec::new()),
        }
    }

    /// Adds (or replaces, by id) a staff account on this kiosk only.
    pub fn put_local_staff(&self, staff: Staff) -> Result<(), StoreError> {
        let mut all = self.local_staff()?;
        all.retain(|s| s.id != staff.id);
        all.push(staff);
        let bytes = serde_json::to_vec(&all).map_err(|e| StoreError::Meta(format!("staff accounts: {e}")))?;
        let sealed = self.keys().seal(crypto::LOCAL_STAFF_PLACE, &bytes)?;
        let tx = self.db.begin_write()?;
        tx.open_table(tables::META)?.insert(meta::LOCAL_STAFF, sealed.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// After a successful sign-in with `pin`: when the account is one of this kiosk's own and its PIN hash was made
    /// with weaker parameters than [`crate::staff::hash_pin`] uses now, re-hashes the PIN with the current ones.
    /// Returns whether it did. (HQ's accounts are HQ's: their hashes come with the reference data and are
    /// replaced by HQ.)
    pub fn upgrade_local_pin_hash(&self, staff: &str, pin: &str) -> Result<bool, StoreError> {
        let Some(mut s) = self.local_staff()?.into_iter().find(|s| s.id == staff) else { return Ok(false) };
        if !crate::staff::needs_rehash(&s.pin_hash) || !crate::staff::verify_pin(&s.pin_hash, pin) {
            return Ok(false);
        }
        s.pin_hash = crate::staff::hash_pin(pin).map_err(|e| StoreError::Meta(format!("PIN hash: {e}")))?;
        self.put_local_staff(s)?;
        Ok(true)
    }

    /// Everyone who may sign in here: HQ's staff, then this kiosk's own accounts (HQ wins on the same id).
    pub fn all_staff(&self) -> Result<Vec<Staff>, StoreError> {
        let mut out: Vec<Staff> = self.reference().staff.clone();
        for s in self.local_staff()? {
            if !out.iter().any(|x| x.id == s.id) {
                out.push(s);
            }
        }
        Ok(out)
    }
}
