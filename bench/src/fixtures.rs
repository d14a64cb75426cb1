//! Stores filled through the normal write path (validation, indexes, outbox).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use guidedesk::command::desk;
use guidedesk::model::{
    Arrival, ArrivalChannel, ArrivalForm, Moment, RecordId, ReferenceData, Sex, StaffRef, VisitType,
};
use guidedesk::store::{ManualClock, Store, StoreError, StoreOptions, WriteCtx, china_offset};

/// Monday 2026-11-23 18:00 in China: "now" for every fixture with a manual clock.
pub const NOW: i64 = 1_795_399_200_000 + 8 * 3_600_000;
/// Arrivals per past day in bulk-seeded stores; today gets the board's own count.
pub const PER_DAY: u64 = 500;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
];
const GIVEN: &[&str] = &[
    "秀英", "桂英", "秀兰", "玉兰", "建华", "建国", "志强", "志明", "伟", "敏", "静", "丽", "强", "磊", "军", "洋",
    "勇", "艳", "杰", "娟", "涛", "明", "超", "秀珍", "霞", "平", "刚", "桂兰", "子涵", "梓萱",
];

/// A store with a manual clock standing at [`NOW`].
pub fn open(dir: &Path) -> Result<(Store, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(Moment(NOW)));
    let store = Store::open_with(dir, StoreOptions { clock: clock.clone(), utc_offset: china_offset() })?;
    Ok((store, clock))
}

/// The `i`-th patient's phone (unique per `i` below 10⁸).
pub fn phone(i: u64) -> String {
    format!("139{:08}", (i * 7_919) % 100_000_000)
}

/// The `i`-th patient's name (900 distinct names, as in a real lobby: many share one).
pub fn name(i: u64) -> String {
    let s = SURNAMES[(i % SURNAMES.len() as u64) as usize];
    let g = GIVEN[((i / SURNAMES.len() as u64) % GIVEN.len() as u64) as usize];
    format!("{s}{g}")
}

/// The registration form of the `i`-th arrival, as typed at the desk.
pub fn form(refs: &ReferenceData, i: u64) -> ArrivalForm {
    let dept = &refs.departments[(i % refs.departments.len() as u64) as usize];
    ArrivalForm {
        name: name(i),
        sex: Some(if i.is_multiple_of(2) { Sex::Female } else { Sex::Male }),
        age: (18 + i % 70).to_string(),
        phone: phone(i),
        visit_type: Some(if i.is_multiple_of(3) { VisitType::Return } else { VisitType::First }),
        channel: Some(ArrivalChannel::WalkIn),
        origin: "本市城区".into(),
        complaint: dept.symptoms.first().cloned().unwrap_or_else(|| "不适".into()),
        department: dept.id.clone(),
        ..ArrivalForm::default()
    }
}

/// Registers arrival `i` at `at` inside a transaction: the record built at that time, then filed through
/// [`guidedesk::command::desk::file_arrival`] (record, indexes, outbox op, and the follow-up task an outpatient first
/// visit with a phone gets).
pub fn register_in(ctx: &mut WriteCtx<'_>, i: u64, at: Moment) -> Result<Arrival, StoreError> {
    let f = form(ctx.reference(), i);
    let draft = f.validate(ctx.reference(), at.local_date(ctx.offset()))?;
    let stamp = ctx.stamp();
    let a = draft.into_record(RecordId::new_v7(at), at, StaffRef("D001".into()), stamp);
    desk::file_arrival(ctx, &a)?;
    Ok(a)
}

/// One registration as the desk does it: [`guidedesk::command::desk::register`] at the clock's now, in its own
/// durable transaction.
pub fn register_one(store: &Store, i: u64) -> Result<Arrival, StoreError> {
    store.write(|ctx| {
        let f = form(ctx.reference(), i);
        let id = desk::register(ctx, &f, &StaffRef("D001".into()))?;
        ctx.require::<Arrival>(id)
    })
}

/// Whether registering arrival `i` also writes a follow-up task: the rule of
/// [`guidedesk::command::calls::outpatient_plan`] (a first visit with a phone number) applied to [`form`].
pub fn gets_followup(refs: &ReferenceData, i: u64) -> bool {
    let f = form(refs, i);
    f.visit_type == Some(VisitType::First) && !f.phone.trim().is_empty()
}

/// The fewest arrivals whose registrations write at least `records` records (arrivals plus their follow-up tasks).
pub fn arrivals_for_records(refs: &ReferenceData, records: u64) -> u64 {
    let (mut arrivals, mut written) = (0, 0);
    while written < records {
        written += 1 + u64::from(gets_followup(refs, arrivals));
        arrivals += 1;
    }
    arrivals
}

/// [`seed_arrivals`] with as many arrivals as it takes for their registrations to write `records` records (arrivals
/// plus their follow-up tasks; `today` of the arrivals today); returns how many records (outbox ops) the store then
/// holds: `records`, or one more when the last arrival brought a task.
pub fn seed_records(store: &Store, records: u64, today: u64, per_tx: u64) -> Result<u64> {
    seed_arrivals(store, arrivals_for_records(&store.reference(), records), today, per_tx)?;
    let held = store.stats()?.outbox_last_seq;
    anyhow::ensure!(held >= records && held <= records + 1, "seeded {held} records, not {records}");
    Ok(held)
}

/// Fills a store with `total` arrivals: `today` of them today, the rest [`PER_DAY`] per day on the days before.
/// Written `per_tx` at a time through [`Store::write`].
pub fn seed_arrivals(store: &Store, total: u64, today: u64, per_tx: u64) -> Result<()> {
    let today = today.min(total);
    let past = total - today;
    let day_ms = 86_400_000i64;
    let start_of_today = NOW - 18 * 3_600_000;
    let at_of = |i: u64| -> Moment {
        if i < past {
            let days_back = (past - i).div_ceil(PER_DAY) as i64;
            let slot = (i % PER_DAY) as i64;
            Moment(start_of_today - days_back * day_ms + 7 * 3_600_000 + slot * 72_000)
        } else {
            let slot = (i - past) as i64;
            // Spread today's arrivals between 07:00 and now.
            Moment(start_of_today + 7 * 3_600_000 + slot * (11 * 3_600_000 / (today.max(1) as i64)))
        }
    };
    let mut i = 0;
    while i < total {
        let end = (i + per_tx).min(total);
        store.write(|ctx| {
            for k in i..end {
                register_in(ctx, k, at_of(k))?;
            }
            Ok(())
        })?;
        i = end;
    }
    Ok(())
}
