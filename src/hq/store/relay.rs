//! The relay log of a site hub (see `hq::relay`): every op the hub applies, kept whole with its origin device, in
//! the hub's own order, until the group HQ has acknowledged it and the retention has passed.
//!
//! | table | key → value | purpose |
//! |---|---|---|
//! | `relay_log` | relay seq → [`RelayRow`] | ops to forward, in the order the hub applied them |
//! | `relay_meta` | name → u64 | `enabled` (1 once enrolled upstream), `acked` (the group HQ's cursor), `last_ok_ms`, `ref_cursor` |
//! | `relay_conf` | `upstream` → JSON | the group HQ's URL, the hub's credential there, its CA |
//!
//! The log is written in the same transaction that applies the op (`BatchTables::apply`), so an op is in it exactly
//! when the hub holds it. A store that is not a hub writes nothing here.

use guidedesk_sync::protocol::RelayEntry;
use guidedesk_sync::{DeviceId, Op, codec};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{DEVICES, DeviceRow, HqBatch, HqError, HqStore, RECEIPTS};

pub(super) const RELAY_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("relay_log");
pub(super) const RELAY_META: TableDefinition<&str, u64> = TableDefinition::new("relay_meta");
/// The hub's upstream (group HQ URL, credential), JSON, under [`UPSTREAM`].
pub(super) const RELAY_CONF: TableDefinition<&str, &[u8]> = TableDefinition::new("relay_conf");

const UPSTREAM: &str = "upstream";

const ENABLED: &str = "enabled";
const ACKED: &str = "acked";
const LAST_OK: &str = "last_ok_ms";
const REF_CURSOR: &str = "ref_cursor";

/// One logged op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RelayRow {
    origin: u128,
    received_ms: u64,
    op: Op,
}

/// Where a hub's relay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayState {
    /// The last relay seq written.
    pub head: u64,
    /// The group HQ holds everything up to this relay seq (as far as the hub last heard).
    pub acked: u64,
    /// The oldest relay seq still retained (head + 1 when none is).
    pub oldest: u64,
    /// When a relay cycle last finished with everything acknowledged (ms), 0 never.
    pub last_ok_ms: u64,
    /// The group HQ's reference-data change the hub last applied.
    pub ref_cursor: u64,
}

impl RelayState {
    /// Ops the group HQ does not hold yet.
    pub fn pending(&self) -> u64 {
        self.head.saturating_sub(self.acked)
    }
}

/// The relay log of a push transaction: appends each applied op.
pub(super) struct RelayLog<'t> {
    table: redb::Table<'t, u64, &'static [u8]>,
    head: u64,
}

impl RelayLog<'_> {
    /// The log of a write transaction, when the store is a hub.
    pub(super) fn open(tx: &redb::WriteTransaction, enabled: bool) -> Result<Option<RelayLog<'_>>, HqError> {
        if !enabled {
            return Ok(None);
        }
        let table = tx.open_table(RELAY_LOG)?;
        let head = table.last()?.map_or(0, |(k, _)| k.value());
        Ok(Some(RelayLog { table, head }))
    }

    /// Logs one applied op of `origin`.
    pub(super) fn append(&mut self, origin: DeviceId, received_ms: u64, op: &Op) -> Result<(), HqError> {
        self.head += 1;
        let row = RelayRow { origin: origin.0, received_ms, op: op.clone() };
        self.table.insert(self.head, codec::encode(&row)?.as_slice())?;
        Ok(())
    }
}

fn meta_u64(t: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, HqError> {
    Ok(t.get(key)?.map_or(0, |g| g.value()))
}

impl HqStore {
    /// Whether this store is a site hub (keeps a relay log for the group HQ).
    pub fn is_hub(&self) -> bool {
        self.hub
    }

    pub(super) fn read_hub_flag(tx: &redb::WriteTransaction) -> Result<bool, HqError> {
        Ok(meta_u64(&tx.open_table(RELAY_META)?, ENABLED)? == 1)
    }

    /// Refuses (with the reason) when this store holds ops it did not log: they could not be forwarded with their
    /// origin, so it cannot become a hub.
    pub fn check_relay_possible(&self) -> Result<(), HqError> {
        let tx = self.read()?;
        if meta_u64(&tx.open_table(RELAY_META)?, ENABLED)? == 1 {
            return Ok(());
        }
        let held = tx.open_table(RECEIPTS)?.len()?;
        if held > 0 {
            return Err(HqError::Refused(format!(
                "this HQ store already holds {held} ops received before it became a hub; they cannot be forwarded \
                 with their origin. Enrol a hub with the group HQ before its desks sync with it (a new data \
                 directory), or let these desks sync with the group HQ directly"
            )));
        }
        Ok(())
    }

    /// Makes this store a hub relaying to `upstream` (JSON, see `hq::relay::outbound::Upstream`): from now on every
    /// op it applies is logged for the group HQ. Refused as [`HqStore::check_relay_possible`] says.
    pub fn enable_relay(&mut self, upstream: &[u8]) -> Result<(), HqError> {
        self.check_relay_possible()?;
        let tx = self.db.begin_write()?;
        tx.open_table(RELAY_META)?.insert(ENABLED, 1)?;
        tx.open_table(RELAY_CONF)?.insert(UPSTREAM, upstream)?;
        tx.commit()?;
        self.hub = true;
        Ok(())
    }

    /// The hub's upstream (JSON), when it is enrolled at a group HQ.
    pub fn upstream_json(&self) -> Result<Option<Vec<u8>>, HqError> {
        let tx = self.read()?;
        Ok(tx.open_table(RELAY_CONF)?.get(UPSTREAM)?.map(|g| g.value().to_vec()))
    }

    /// Where the relay stands.
    pub fn relay_state(&self) -> Result<RelayState, HqError> {
        let tx = self.read()?;
        let meta = tx.open_table(RELAY_META)?;
        let log = tx.open_table(RELAY_LOG)?;
        let head = log.last()?.map_or(0, |(k, _)| k.value()).max(meta_u64(&meta, ACKED)?);
        Ok(RelayState {
            head,
            acked: meta_u64(&meta, ACKED)?,
            oldest: log.first()?.map_or(head + 1, |(k, _)| k.value()),
            last_ok_ms: meta_u64(&meta, LAST_OK)?,
            ref_cursor: meta_u64(&meta, REF_CURSOR)?,
        })
    }

    /// Up to `limit` logged ops after relay seq `after`, as relay entries (each with its origin's desk code).
    pub fn relay_after(&self, after: u64, limit: usize) -> Result<Vec<RelayEntry>, HqError> {
        let tx = self.read()?;
        let log = tx.open_table(RELAY_LOG)?;
        let devices = tx.open_table(DEVICES)?;
        let mut desks: std::collections::HashMap<u128, String> = std::collections::HashMap::new();
        let mut out = Vec::new();
        for e in log.range(after.saturating_add(1)..)?.take(limit) {
            let (k, v) = e?;
            let row: RelayRow = codec::decode(v.value())?;
            let desk = if let Some(d) = desks.get(&row.origin) {
                d.clone()
            } else {
                let d = devices
                    .get(row.origin)?
                    .map(|g| codec::decode::<DeviceRow>(g.value()))
                    .transpose()?
                    .map(|r| r.desk)
                    .unwrap_or_default();
                desks.insert(row.origin, d.clone());
                d
            };
            out.push(RelayEntry { seq: k.value(), origin: DeviceId(row.origin), desk, op: row.op });
        }
        Ok(out)
    }

    /// Records the group HQ's cursor (lower than before after a group HQ restore: those ops go again) and drops
    /// acknowledged entries received before `keep_after_ms` (never the last one, which keeps the head). How many
    /// were dropped.
    pub fn relay_acked(&self, through: u64, keep_after_ms: u64) -> Result<u64, HqError> {
        let tx = self.db.begin_write()?;
        let mut dropped = 0;
        {
            tx.open_table(RELAY_META)?.insert(ACKED, through)?;
            let mut log = tx.open_table(RELAY_LOG)?;
            // The last row always stays: it carries the head, so relay seqs are never reused.
            let last = log.last()?.map_or(0, |(k, _)| k.value());
            let mut old = Vec::new();
            for e in log.range(..=through.min(last.saturating_sub(1)))? {
                let (k, v) = e?;
                let row: RelayRow = codec::decode(v.value())?;
                if row.received_ms >= keep_after_ms {
                    break;
                }
                old.push(k.value());
            }
            for k in old {
                log.remove(k)?;
                dropped += 1;
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// Notes a relay cycle that left nothing pending.
    pub fn relay_succeeded(&self, now_ms: u64) -> Result<(), HqError> {
        let tx = self.db.begin_write()?;
        tx.open_table(RELAY_META)?.insert(LAST_OK, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores the group HQ's reference-data cursor after its data was applied.
    pub fn set_relay_ref_cursor(&self, cursor: u64) -> Result<(), HqError> {
        let tx = self.db.begin_write()?;
        tx.open_table(RELAY_META)?.insert(REF_CURSOR, cursor)?;
        tx.commit()?;
        Ok(())
    }
}

/// Opens the relay tables at store creation (so readers find them).
pub(super) fn create(tx: &redb::WriteTransaction) -> Result<(), HqError> {
    tx.open_table(RELAY_LOG)?;
    tx.open_table(RELAY_META)?;
    tx.open_table(RELAY_CONF)?;
    Ok(())
}

impl HqBatch<'_> {
    /// Which of these ops (origin device, seq) the store holds already.
    pub fn relay_held(&mut self, ops: &[(DeviceId, u64)]) -> Result<std::collections::HashSet<(u128, u64)>, HqError> {
        let receipts = self.tx.open_table(RECEIPTS)?;
        let mut held = std::collections::HashSet::new();
        for &(d, seq) in ops {
            if receipts.get((d.0, seq))?.is_some() {
                held.insert((d.0, seq));
            }
        }
        Ok(held)
    }

    /// Makes sure a relayed op's origin device has a row at `site` (created on its first relayed op, with no
    /// credential); `Ok(Err(reason))` when the device belongs to another site or is revoked.
    pub fn admit_origin(
        &mut self,
        site: &str,
        origin: DeviceId,
        desk: &str,
        now_ms: u64,
    ) -> Result<Result<(), String>, HqError> {
        let mut devices = self.tx.open_table(DEVICES)?;
        let row = devices.get(origin.0)?.map(|g| codec::decode::<DeviceRow>(g.value())).transpose()?;
        if let Some(r) = row {
            return Ok(crate::hq::relay::origin_check(site, &r.site, r.revoked_ms.is_some()));
        }
        let row = DeviceRow {
            site: site.to_string(),
            desk: crate::hq::relay::origin_desk(desk),
            token_hash: [0; 32],
            enrolled_ms: now_ms,
            revoked_ms: None,
            last_seq: 0,
            last_push_ms: 0,
            skew_ms: 0,
        };
        devices.insert(origin.0, codec::encode(&row)?.as_slice())?;
        Ok(Ok(()))
    }
}
