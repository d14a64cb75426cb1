//! The streaming pass over the kiosk store: every record of the period, read through the business-time index and
//! folded into an [`Aggregator`] one at a time — nothing is collected in memory. Follow-up tasks are read over
//! [`ReportParams::task_days`], since a discharge task is filed under its discharge date.

use super::ReportParams;
use super::agg::Aggregator;
use crate::model::{Moment, RecordKind};
use crate::store::{Store, StoreError};

/// Aggregates the period from the store in one pass per record kind. Cases are read from the start of the
/// accountability look-back so the rolling dispute counts are complete.
pub fn aggregate(store: &Store, params: ReportParams) -> Result<Aggregator, StoreError> {
    aggregate_selected(store, params, |_| true, None)
}

/// [`aggregate`] over the records `keep` accepts, with feedback read only up to `feedback_until` when given (the
/// dashboard filters by department and leaves the current hour's surveys out, so one survey cannot be singled
/// out).
pub fn aggregate_selected(
    store: &Store,
    params: ReportParams,
    mut keep: impl FnMut(&crate::model::AnyRecord) -> bool,
    feedback_until: Option<Moment>,
) -> Result<Aggregator, StoreError> {
    let mut agg = Aggregator::new(params);
    let offset = params.offset;
    let (from, to) = (params.period.start(offset), params.period.end(offset));
    for kind in [
        RecordKind::Arrival,
        RecordKind::Consultation,
        RecordKind::Feedback,
        RecordKind::FollowupTask,
        RecordKind::CallAttempt,
        RecordKind::Appointment,
    ] {
        let (start, end) = match feedback_until {
            Some(until) if kind == RecordKind::Feedback => (from, to.min(until)),
            _ if kind == RecordKind::FollowupTask => {
                // Discharge tasks are filed under their discharge date (`agg::filing_day`).
                let (first, last) = params.task_days();
                (
                    Moment::start_of_day(first, offset),
                    Moment::start_of_day(last.succ_opt().unwrap_or(last), offset).max(to),
                )
            }
            // Bookings are filed under the day booked (`agg::filing_day`), made up to a year before it.
            _ if kind == RecordKind::Appointment => {
                (Moment::start_of_day(params.booking_days().0, offset).min(from), to)
            }
            _ => (from, to),
        };
        store.for_each_between(kind, start, end, |rec| {
            if keep(&rec) {
                agg.add(&rec);
            }
            Ok(())
        })?;
    }
    let case_from = Moment::start_of_day(params.accountability_from(), offset).min(from);
    store.for_each_between(RecordKind::Case, case_from, to, |rec| {
        if keep(&rec) {
            agg.add(&rec);
        }
        Ok(())
    })?;
    Ok(agg)
}
