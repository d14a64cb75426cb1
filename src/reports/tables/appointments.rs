//! The booking tables: appointment statistics per day (客服中心管理方案 四.3) and the arrival rate (来院达到率) by
//! booking channel and by department.

use super::{Table, c, labels, num, share, text, weekday};
use crate::model::ReferenceData;
use crate::reports::Lang;
use crate::reports::agg::BookingCounts;
use crate::reports::summary::Summary;

/// Bookings per day of the period, by what became of them.
pub fn appointments_by_day(s: &Summary, lang: Lang) -> Table {
    let mut t = Table::new(
        "appointments_by_day",
        &[
            c("date"),
            c("weekday"),
            c("bookings"),
            c("checked_in"),
            c("no_show"),
            c("cancelled"),
            c("rescheduled"),
            c("still_booked"),
            c("overbooked"),
            c("arrival_rate_pct"),
        ],
    );
    for d in s.params().period.days() {
        let b = s.agg.appointments.by_day.get(&d).copied().unwrap_or_default();
        t.push(vec![
            text(d.to_string()),
            text(weekday(d, lang)),
            num(b.total),
            num(b.checked_in),
            num(b.no_show),
            num(b.cancelled),
            num(b.rescheduled),
            num(b.booked),
            num(b.overbooked),
            share(b.arrived(), b.expected()),
        ]);
    }
    t
}

/// The arrival rate by booking channel, then by department (clinic bookings; home care is not checked in).
pub fn appointment_arrival_rate(s: &Summary, refs: &ReferenceData, lang: Lang) -> Table {
    let mut t = Table::new(
        "appointment_arrival_rate",
        &[
            c("by"),
            c("by_name"),
            c("code"),
            c("code_name"),
            c("bookings"),
            c("checked_in"),
            c("expected"),
            c("arrival_rate_pct"),
        ],
    );
    let tr = lang.tr();
    let mut row = |by: &str, code: String, name: String, b: &BookingCounts| {
        t.push(vec![
            text(by),
            text(tr.k("report.rate_by", by)),
            text(code),
            text(name),
            num(b.total),
            num(b.arrived()),
            num(b.expected()),
            share(b.arrived(), b.expected()),
        ]);
    };
    let a = &s.agg.appointments;
    for (ch, b) in &a.by_channel {
        row("channel", ch.key().to_string(), tr.k("report.booking_channel", ch.key()).to_string(), b);
    }
    for (d, b) in &a.by_department {
        row("department", d.clone(), labels::department(refs, d, lang), b);
    }
    t
}
