//! Failed sign-in attempts per staff account, kept in the store's meta table so that restarting the kiosk does not
//! reset a lockout. The back-off rule itself lives in [`crate::staff::Lockout`].

use redb::ReadableTable;

use super::{Store, StoreError, tables};
use crate::model::Moment;
use crate::staff::Lockout;

/// Meta key prefix: `signin_failures:<staff id>` holds that account's [`Lockout`] as JSON.
const PREFIX: &str = "signin_failures:";

impl Store {
    /// The failed-attempt record of a staff account (zero failures when there is none).
    pub fn signin_lockout(&self, staff: &str) -> Result<Lockout, StoreError> {
        let tx = self.read()?;
        let m = tx.open_table(tables::META)?;
        let v = m.get(format!("{PREFIX}{staff}").as_str())?;
        match v {
            Some(g) => serde_json::from_slice(g.value())
                .map_err(|e| StoreError::Meta(format!("sign-in failures of {staff} cannot be read: {e}"))),
            None => Ok(Lockout::default()),
        }
    }

    /// Counts one more wrong PIN for `staff` at `at` and returns the updated record (durable before it returns).
    pub fn record_signin_failure(&self, staff: &str, at: Moment) -> Result<Lockout, StoreError> {
        let key = format!("{PREFIX}{staff}");
        let tx = self.db.begin_write()?;
        let next = {
            let mut m = tx.open_table(tables::META)?;
            let current: Lockout = match m.get(key.as_str())? {
                Some(g) => serde_json::from_slice(g.value())
                    .map_err(|e| StoreError::Meta(format!("sign-in failures of {staff} cannot be read: {e}")))?,
                None => Lockout::default(),
            };
            let next = current.failed(at);
            let bytes = serde_json::to_vec(&next).map_err(|e| StoreError::Meta(format!("sign-in failures: {e}")))?;
            m.insert(key.as_str(), bytes.as_slice())?;
            next
        };
        tx.commit()?;
        Ok(next)
    }

    /// Forgets the failed attempts of `staff` (after a correct PIN).
    pub fn clear_signin_failures(&self, staff: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(tables::META)?.remove(format!("{PREFIX}{staff}").as_str())?;
        tx.commit()?;
        Ok(())
    }
}
