//! Bookings (预约), filed under the day booked: the day's statistics (seed 客服中心管理方案 四.3) and the arrival
//! rate (来院达到率) by channel and department.
//!
//! The rate's numerator is the bookings checked in; its denominator the bookings whose outcome is known — checked
//! in or no-show. Cancelled and rescheduled bookings (the new booking counts instead), bookings still expected
//! (their session has not ended) and home-care visits (never checked in at the desk) are left out of it.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::add_map;
use crate::model::{Appointment, AppointmentStatus, AppointmentType, BookingChannel};

/// Bookings by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookingCounts {
    /// Every booking for the day(s).
    pub total: u64,
    /// Still expected.
    pub booked: u64,
    /// Came.
    pub checked_in: u64,
    /// Did not come.
    pub no_show: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Moved to another booking.
    pub rescheduled: u64,
    /// Booked into a full session (with a reason).
    pub overbooked: u64,
}

impl BookingCounts {
    fn add(&mut self, a: &Appointment) {
        self.total += 1;
        match a.status() {
            AppointmentStatus::Booked => self.booked += 1,
            AppointmentStatus::CheckedIn => self.checked_in += 1,
            AppointmentStatus::NoShow => self.no_show += 1,
            AppointmentStatus::Cancelled => self.cancelled += 1,
            AppointmentStatus::Rescheduled => self.rescheduled += 1,
        }
        self.overbooked += u64::from(a.overbooked.is_some());
    }

    fn merge(&mut self, o: &BookingCounts) {
        self.total += o.total;
        self.booked += o.booked;
        self.checked_in += o.checked_in;
        self.no_show += o.no_show;
        self.cancelled += o.cancelled;
        self.rescheduled += o.rescheduled;
        self.overbooked += o.overbooked;
    }

    /// The arrival rate's numerator: bookings that came.
    pub fn arrived(&self) -> u64 {
        self.checked_in
    }

    /// The arrival rate's denominator: bookings whose outcome is known (came or did not).
    pub fn expected(&self) -> u64 {
        self.checked_in + self.no_show
    }
}

/// Bookings of the period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppointmentAcc {
    /// Every booking.
    pub all: BookingCounts,
    /// Bookings the arrival rate counts (home care left out).
    pub clinic: BookingCounts,
    /// By day booked.
    pub by_day: BTreeMap<NaiveDate, BookingCounts>,
    /// By type.
    pub by_kind: BTreeMap<AppointmentType, BookingCounts>,
    /// By booking channel (clinic bookings).
    pub by_channel: BTreeMap<BookingChannel, BookingCounts>,
    /// By department code (clinic bookings).
    pub by_department: BTreeMap<String, BookingCounts>,
    /// Cancellation and reschedule reasons with their counts.
    pub reasons: BTreeMap<String, u64>,
}

impl AppointmentAcc {
    /// Folds one booking in.
    pub fn add(&mut self, a: &Appointment) {
        self.all.add(a);
        self.by_day.entry(a.day).or_default().add(a);
        self.by_kind.entry(a.kind).or_default().add(a);
        if a.kind.comes_in() {
            self.clinic.add(a);
            self.by_channel.entry(a.channel).or_default().add(a);
            self.by_department.entry(a.department.clone()).or_default().add(a);
        }
        if matches!(a.status(), AppointmentStatus::Cancelled | AppointmentStatus::Rescheduled)
            && let Some(r) = a.events.iter().rev().find_map(|e| e.reason.clone())
        {
            *self.reasons.entry(r).or_default() += 1;
        }
    }

    /// Merges another accumulator of disjoint bookings.
    pub fn merge(&mut self, o: &AppointmentAcc) {
        self.all.merge(&o.all);
        self.clinic.merge(&o.clinic);
        merge_counts(&mut self.by_day, &o.by_day);
        merge_counts(&mut self.by_kind, &o.by_kind);
        merge_counts(&mut self.by_channel, &o.by_channel);
        merge_counts(&mut self.by_department, &o.by_department);
        add_map(&mut self.reasons, &o.reasons);
    }
}

fn merge_counts<K: Ord + Clone>(a: &mut BTreeMap<K, BookingCounts>, b: &BTreeMap<K, BookingCounts>) {
    for (k, v) in b {
        a.entry(k.clone()).or_default().merge(v);
    }
}
