//! Enrolment, authentication and revocation on the embedded store: codes in `codes`, devices in `devices`,
//! credential hashes in `tokens`. The rules of enrolment are `hq::enrol`'s; this module only reads and writes the
//! rows under one write transaction.

use guidedesk_sync::{DeviceId, codec};
use redb::{ReadTransaction, ReadableTable};

use super::{
    AuthDevice, AuthRefusal, CODES, CodeRow, DEVICES, DeviceRow, EnrollRefusal, Enrolled, HqError, HqStore, TOKENS,
    check_site_desk, new_code, new_token, normalize_code, sha,
};

impl HqStore {
    /// Makes a one-time enrolment code for a desk, valid for `ttl_ms`.
    pub fn create_code(&self, site: &str, desk: &str, now_ms: u64, ttl_ms: u64) -> Result<String, HqError> {
        self.create_code_for(site, desk, None, now_ms, ttl_ms)
    }

    /// [`HqStore::create_code`]; with `for_device`, only that device may use it (a new credential for an enrolled
    /// device, e.g. a kiosk whose disk was replaced).
    pub fn create_code_for(
        &self,
        site: &str,
        desk: &str,
        for_device: Option<DeviceId>,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<String, HqError> {
        let (site, desk) = check_site_desk(site, desk)?;
        let code = new_code()?;
        let row = CodeRow {
            site: site.to_string(),
            desk: desk.to_string(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            used_by: None,
            used_ms: None,
            for_device: for_device.map(|d| d.0),
        };
        let tx = self.db.begin_write()?;
        tx.open_table(CODES)?
            .insert(sha(normalize_code(&code).as_bytes()).as_slice(), codec::encode(&row)?.as_slice())?;
        tx.commit()?;
        Ok(code)
    }

    /// Trades a code for a credential under the rules of [`super::enrol`]. A device enrolled before keeps its
    /// cursor, so nothing it sent is taken twice.
    pub fn enroll(
        &self,
        code: &str,
        device: DeviceId,
        now_ms: u64,
    ) -> Result<Result<Enrolled, EnrollRefusal>, HqError> {
        let key = sha(normalize_code(code).as_bytes());
        let tx = self.db.begin_write()?;
        let enrolled = {
            let mut codes = tx.open_table(CODES)?;
            let Some(mut row) = codes.get(key.as_slice())?.map(|g| CodeRow::decode(g.value())).transpose()? else {
                return Ok(Err(EnrollRefusal::Invalid));
            };
            let mut devices = tx.open_table(DEVICES)?;
            let old = devices.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
            let state =
                old.as_ref().map(|d| crate::hq::enrol::DeviceState { site: &d.site, revoked: d.revoked_ms.is_some() });
            if let Err(refusal) = crate::hq::enrol::check(&row.state(), state.as_ref(), device.0, now_ms) {
                return Ok(Err(refusal));
            }
            row.used_by = Some(device.0);
            row.used_ms.get_or_insert(now_ms);
            codes.insert(key.as_slice(), codec::encode(&row)?.as_slice())?;
            let token = new_token()?;
            let token_hash = sha(token.as_bytes());
            let mut tokens = tx.open_table(TOKENS)?;
            let dev = match old {
                Some(mut d) => {
                    tokens.remove(d.token_hash.as_slice())?;
                    d.desk.clone_from(&row.desk);
                    d.token_hash = token_hash;
                    d
                }
                None => DeviceRow {
                    site: row.site.clone(),
                    desk: row.desk.clone(),
                    token_hash,
                    enrolled_ms: now_ms,
                    revoked_ms: None,
                    last_seq: 0,
                    last_push_ms: 0,
                    skew_ms: 0,
                },
            };
            devices.insert(device.0, codec::encode(&dev)?.as_slice())?;
            tokens.insert(token_hash.as_slice(), device.0)?;
            Enrolled { token, site: row.site, desk: row.desk }
        };
        tx.commit()?;
        Ok(Ok(enrolled))
    }

    /// The device behind a credential.
    pub fn authenticate(&self, token: &str) -> Result<Result<AuthDevice, AuthRefusal>, HqError> {
        let tx = self.read()?;
        let Some(device) = tx.open_table(TOKENS)?.get(sha(token.trim().as_bytes()).as_slice())?.map(|g| g.value())
        else {
            return Ok(Err(AuthRefusal::Unknown));
        };
        let Some(row) = Self::device_in(&tx, device)? else {
            return Ok(Err(AuthRefusal::Unknown));
        };
        if row.revoked_ms.is_some() {
            return Ok(Err(AuthRefusal::Revoked));
        }
        Ok(Ok(AuthDevice { device: DeviceId(device), site: row.site }))
    }

    fn device_in(tx: &ReadTransaction, device: u128) -> Result<Option<DeviceRow>, HqError> {
        Ok(tx.open_table(DEVICES)?.get(device)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?)
    }

    /// A device's row.
    pub fn device(&self, device: DeviceId) -> Result<Option<DeviceRow>, HqError> {
        Self::device_in(&self.read()?, device.0)
    }

    /// Every device.
    pub fn devices(&self) -> Result<Vec<(DeviceId, DeviceRow)>, HqError> {
        let tx = self.read()?;
        let mut out = Vec::new();
        for e in tx.open_table(DEVICES)?.iter()? {
            let (k, v) = e?;
            out.push((DeviceId(k.value()), codec::decode(v.value())?));
        }
        Ok(out)
    }

    /// Revokes a device: its credential stops working. Returns whether the device exists.
    pub fn revoke(&self, device: DeviceId, now_ms: u64) -> Result<bool, HqError> {
        let tx = self.db.begin_write()?;
        let found = {
            let mut devices = tx.open_table(DEVICES)?;
            let row = devices.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
            match row {
                Some(mut r) => {
                    r.revoked_ms.get_or_insert(now_ms);
                    devices.insert(device.0, codec::encode(&r)?.as_slice())?;
                    true
                }
                None => false,
            }
        };
        tx.commit()?;
        Ok(found)
    }

    /// Lifts a device's revocation: its credential works again. Returns whether the device exists.
    pub fn reinstate(&self, device: DeviceId) -> Result<bool, HqError> {
        let tx = self.db.begin_write()?;
        let found = {
            let mut devices = tx.open_table(DEVICES)?;
            let row = devices.get(device.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
            match row {
                Some(mut r) => {
                    r.revoked_ms = None;
                    devices.insert(device.0, codec::encode(&r)?.as_slice())?;
                    true
                }
                None => false,
            }
        };
        tx.commit()?;
        Ok(found)
    }
}
