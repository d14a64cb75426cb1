//! Figures of the site hub (group `relay`): how fast a hub forwards what its desks wrote to the group HQ, and how
//! long the nightly catch-up of one busy hospital day takes.
//!
//! The hub is an embedded HQ store in this process, filled through the push rules from desks' real outboxes (the
//! desks' own syncs are not timed); the group HQ is an in-process server on loopback, on PostgreSQL (production)
//! and on the embedded store. What is timed is `guidedesk-hq relay`'s cycle: the hub reads its relay log, sends it
//! in batches over HTTP, the group HQ applies each batch in one transaction and the hub records each
//! acknowledgement durably.

use std::time::Instant;

use anyhow::{Context, Result};
use guidedesk::hq::backend::HqBackend;
use guidedesk::hq::limits::ApiOptions;
use guidedesk::hq::relay::{HUB_DESK, outbound};
use guidedesk::hq::server::{self, ServeOptions};
use guidedesk::hq::store::HqStore;

use crate::Sizes;
use crate::children;
use crate::fixtures;
use crate::table::{Table, n};

/// Desks of the hospital whose ops the hub holds.
const DESKS: u64 = 4;

/// Runs the relay figures.
pub fn run(s: &Sizes, t: &mut Table) -> Result<()> {
    let (throughput, day) = if s.quick { (2_000, 1_000) } else { (100_000, 20_000) };
    let pg = children::postgres_reachable();
    let mut groups: Vec<(&str, bool)> = vec![("the embedded group HQ", false)];
    if pg.is_ok() {
        groups.insert(0, ("the group HQ on PostgreSQL", true));
    } else if let Err(e) = &pg {
        t.info(
            "relay hub → group HQ on PostgreSQL",
            format!("not measured: PostgreSQL at {} unreachable: {e}", children::database_url()),
            "",
        );
    }
    for (name, on_pg) in groups {
        let (secs, records, limit) = relay_once(throughput, on_pg)?;
        let rate = records as f64 / secs;
        let limit_rate = records as f64 / limit;
        let fig = format!("relay hub → {name} ({} records from {DESKS} desks)", n(records));
        let value = format!("{} records/s ({secs:.1} s)", n(rate as u64));
        let r = format!("{:.0}% of the group HQ's own apply", 100.0 * rate / limit_rate);
        if on_pg {
            t.target(fig, value, "≥ 50 000 records/s", r, rate >= 50_000.0);
        } else {
            t.info(fig, value, r);
        }
        t.info(
            format!("the group HQ's own apply of the same batches in one process ({name}, durable)"),
            format!("{} records/s ({limit:.1} s)", n(limit_rate as u64)),
            "",
        );
        let (secs, records, _) = relay_once(day, on_pg)?;
        t.info(
            format!("nightly catch-up of one busy day at {name} ({} records)", n(records)),
            format!("{secs:.1} s"),
            "",
        );
    }
    Ok(())
}

/// Fills a hub with `total` records from [`DESKS`] desks, then times one relay cycle to a fresh group HQ, and the
/// group HQ's own apply of the same batches in this process (no HTTP, no hub) into another fresh store. Returns
/// both times in seconds and the records relayed.
fn relay_once(total: u64, on_pg: bool) -> Result<(f64, u64, f64)> {
    let group_dir = tempfile::tempdir()?;
    let (group_store, _schema) = if on_pg {
        let (store, schema) = children::postgres_store()?;
        (HqBackend::from(store), Some(schema))
    } else {
        (HqBackend::from(HqStore::open(group_dir.path())?), None)
    };
    let now = server::now_ms();
    let code = group_store.create_code("main", HUB_DESK, now, 3_600_000)?;
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse()?,
        tls: None,
        allow_plain_http: false,
        changelog_keep: 100,
        admin_file: None,
    };
    let group = server::start_with(group_store, &options, ApiOptions { rate_limit: None, ..ApiOptions::default() })?;
    let hub_dir = tempfile::tempdir()?;
    let mut hub = HqStore::open(hub_dir.path())?;
    outbound::enroll(&mut hub, &group.url(), &code, None, false)?;
    let hub = HqBackend::from(hub);
    let mut records = 0;
    for d in 0..DESKS {
        let desk_dir = tempfile::tempdir()?;
        let (desk, _clock) = fixtures::open(desk_dir.path())?;
        let held = fixtures::seed_records(&desk, total / DESKS, 0, 1_000)?;
        let code = hub.create_code("main", &format!("desk-{d}"), now, 3_600_000)?;
        if let Err(e) = hub.enroll(&code, desk.device(), now)? {
            anyhow::bail!("the hub refused a desk: {e:?}");
        }
        let ops = desk.outbox_after(0, usize::MAX)?;
        for batch in ops.chunks(2_000) {
            guidedesk_sync::server::apply_push(&hub, desk.device(), batch, now, now)
                .map_err(|e| anyhow::anyhow!("filling the hub: {e}"))?;
        }
        records += held;
    }
    let HqBackend::Embedded(hub) = &hub else { anyhow::bail!("the hub is embedded") };
    let t0 = Instant::now();
    let report = outbound::run_cycle(hub, server::now_ms(), outbound::DEFAULT_RETAIN_MS, 100)?;
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(report.pending == 0 && report.applied == records, "the relay left work: {report:?}");
    let held = group.store().receipts().context("reading the group HQ's receipts")?.len() as u64;
    anyhow::ensure!(held == records, "the group HQ holds {held} ops, not {records}");
    group.shutdown()?;
    let limit = apply_in_process(hub, on_pg)?;
    Ok((secs, records, limit))
}

/// The durable-apply limit: the hub's whole log applied by a fresh group HQ store in this process, batch by batch.
fn apply_in_process(hub: &HqStore, on_pg: bool) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let (store, _schema) = if on_pg {
        let (store, schema) = children::postgres_store()?;
        (HqBackend::from(store), Some(schema))
    } else {
        (HqBackend::from(HqStore::open(dir.path())?), None)
    };
    let now = server::now_ms();
    let hub_id = guidedesk_sync::DeviceId(outbound::Upstream::of(hub)?.context("the hub is enrolled")?.hub);
    let code = store.create_code("main", HUB_DESK, now, 3_600_000)?;
    if let Err(e) = store.enroll(&code, hub_id, now)? {
        anyhow::bail!("the in-process group HQ refused the hub: {e:?}");
    }
    let entries = hub.relay_after(0, usize::MAX)?;
    let t0 = Instant::now();
    for batch in entries.chunks(outbound::RELAY_BATCH) {
        guidedesk::hq::relay::inbound::apply_relay(&store, hub_id, "main", batch, now, now)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    store.close();
    Ok(secs)
}
