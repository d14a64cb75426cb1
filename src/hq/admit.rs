//! What HQ checks before it applies an op, written once for both stores: an op that fails is quarantined with the
//! reason (and acknowledged, so it never wedges the device's queue); `guidedesk-hq quarantine` shows, releases or
//! drops it.
//!
//! - **Ownership** ([`owner`]): a record belongs to the site of the device that first sent it. Any device of that
//!   site may change it; a device of another site may not (its op is quarantined, the record is untouched).
//! - **Times** ([`screen`]): every instant on the record (receipt, steps, events, closing), corrected by the sending
//!   device's clock skew, lies between [`EARLIEST_MS`] and HQ's clock plus [`FUTURE_TOLERANCE_MS`]; every planned
//!   day (deadlines, due windows) between 2000-01-01 and [`PLANNED_YEARS_AHEAD`] years from now. A skew larger
//!   than [`MAX_TRUSTED_SKEW_MS`] is not used to excuse a time: such a device's clock is broken.
//! - **Codes**: department codes must be in the site's reference data, when HQ has published any (without reference
//!   data at HQ there is nothing to check against). Reference data is cached per site for
//!   [`SCREEN_CACHE_TTL`] and dropped at once when this process imports new data; another HQ process on the same
//!   PostgreSQL database sees an import within that time.
//!
//! An admin's `quarantine release` applies an op without the time and code checks (a person looked at it); the
//! ownership rule has no override.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use guidedesk_sync::server::OpContext;

use crate::model::{AnyRecord, ReferenceData};

/// No instant on a record lies before 2000-01-01T00:00:00Z.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// How far past HQ's clock an instant may lie once corrected by the device's skew: wide enough for a desk whose
/// clock ran a year ahead for a while and was then set right (its records keep the wrong times; HQ clamps and
/// flags their stamps, and reports correct them), narrow enough that no stored time breaks a calendar.
pub const FUTURE_TOLERANCE_MS: i64 = 400 * 24 * 3_600_000;
/// How far ahead a planned day (deadline, due window) may lie.
pub const PLANNED_YEARS_AHEAD: i32 = 3;
/// Largest device clock skew HQ corrects for when it checks times.
pub const MAX_TRUSTED_SKEW_MS: i64 = 400 * 24 * 3_600_000;
/// How long a site's reference data is reused before it is read again.
pub const SCREEN_CACHE_TTL: Duration = Duration::from_mins(1);

/// The reference facts the checks need for one site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screen {
    /// Known department codes; `None` when HQ has no reference data for the site.
    departments: Option<HashSet<String>>,
}

impl Screen {
    /// The screen for a site's reference data (`None`: none published).
    pub fn new(reference: Option<&ReferenceData>) -> Self {
        Self { departments: reference.map(|r| r.departments.iter().map(|d| d.id.clone()).collect()) }
    }
}

/// The ownership rule: a record stored for `owner_site` may be changed only by a device of that site.
pub fn owner(owner_site: &str, device_site: &str, record: &AnyRecord) -> Result<(), String> {
    if owner_site == device_site {
        Ok(())
    } else {
        Err(format!(
            "{} {} belongs to site {owner_site:?}; a device of site {device_site:?} may not change it",
            record.kind().name(),
            record.id().0
        ))
    }
}

/// The time and code checks of an arriving record.
pub fn screen(record: &AnyRecord, ctx: &OpContext, screen: &Screen) -> Result<(), String> {
    let now = i64::try_from(ctx.received_ms).unwrap_or(i64::MAX);
    let skew = if ctx.skew_ms.abs() <= MAX_TRUSTED_SKEW_MS { ctx.skew_ms } else { 0 };
    let latest = now.saturating_add(FUTURE_TOLERANCE_MS);
    for (field, at) in record.event_times() {
        let corrected = at.0.saturating_sub(skew);
        if corrected < EARLIEST_MS || corrected > latest {
            return Err(format!(
                "{} {}: field {field:?} is {} ms from HQ's clock, outside the accepted window",
                record.kind().name(),
                record.id().0,
                corrected.saturating_sub(now)
            ));
        }
    }
    let today = chrono::DateTime::from_timestamp_millis(now).map_or(NaiveDate::MAX, |d| d.date_naive());
    let last_day =
        today.checked_add_months(chrono::Months::new(12 * PLANNED_YEARS_AHEAD.unsigned_abs())).unwrap_or(today);
    let first_day = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
    for (field, day) in record.planned_days() {
        if day < first_day || day > last_day {
            return Err(format!(
                "{} {}: field {field:?} is {day}, outside 2000-01-01..{last_day}",
                record.kind().name(),
                record.id().0
            ));
        }
    }
    if let Some(known) = &screen.departments {
        for (field, code) in record.department_codes() {
            if !known.contains(code) {
                return Err(format!(
                    "{} {}: field {field:?} holds a department code that is not in the site's reference data",
                    record.kind().name(),
                    record.id().0
                ));
            }
        }
    }
    Ok(())
}

/// Screens per site, reused for [`SCREEN_CACHE_TTL`].
#[derive(Debug, Default)]
pub struct ScreenCache {
    sites: Mutex<HashMap<String, (Instant, Arc<Screen>)>>,
}

impl ScreenCache {
    /// The screen for `site`, from the cache or from `load` (the site's reference data).
    pub fn get<E>(
        &self,
        site: &str,
        load: impl FnOnce() -> Result<Option<ReferenceData>, E>,
    ) -> Result<Arc<Screen>, E> {
        match self.cached(site) {
            Some(s) => Ok(s),
            None => Ok(self.put(site, Screen::new(load()?.as_ref()))),
        }
    }

    /// The cached screen for `site`, while it is fresh.
    pub fn cached(&self, site: &str) -> Option<Arc<Screen>> {
        let map = self.sites.lock().ok()?;
        let (at, s) = map.get(site)?;
        (at.elapsed() < SCREEN_CACHE_TTL).then(|| Arc::clone(s))
    }

    /// Caches `screen` for `site`.
    pub fn put(&self, site: &str, screen: Screen) -> Arc<Screen> {
        let screen = Arc::new(screen);
        if let Ok(mut map) = self.sites.lock() {
            map.insert(site.to_string(), (Instant::now(), Arc::clone(&screen)));
        }
        screen
    }

    /// Forgets every cached screen (reference data changed).
    pub fn clear(&self) {
        if let Ok(mut map) = self.sites.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use guidedesk_sync::{DeviceId, Hlc};

    use super::*;
    use crate::model::{Moment, RecordId, StaffRef};

    const NOW: i64 = 1_780_000_000_000;

    fn ctx(skew_ms: i64) -> OpContext {
        OpContext {
            device: DeviceId(1),
            received_ms: NOW as u64,
            stamp: Hlc { wall_ms: NOW as u64, logical: 0, node: 1 },
            clamped: false,
            skew_ms,
        }
    }

    fn arrival(at: i64, department: &str) -> AnyRecord {
        let refs = ReferenceData::bundled().unwrap();
        let mut form = crate::model::arrival::tests::form();
        form.department = department.into();
        let today = Moment(NOW).local_date(crate::model::common::china_offset());
        let a = form.validate(&refs, today).unwrap().into_record(
            RecordId::new_v7(Moment(at)),
            Moment(at),
            StaffRef("g1".into()),
            Hlc { wall_ms: at as u64, logical: 0, node: 1 },
        );
        AnyRecord::Arrival(a)
    }

    #[test]
    fn times_are_checked_against_hqs_clock_corrected_by_a_plausible_skew() {
        let refs = ReferenceData::bundled().unwrap();
        let s = Screen::new(Some(&refs));
        assert_eq!(screen(&arrival(NOW, "cardio"), &ctx(0), &s), Ok(()));
        let year = 365 * 24 * 3_600_000;
        // A desk whose clock runs a year ahead: corrected by its skew, in the window.
        assert_eq!(screen(&arrival(NOW + year, "cardio"), &ctx(year), &s), Ok(()));
        let err = screen(&arrival(NOW + 2 * year, "cardio"), &ctx(0), &s).unwrap_err();
        assert!(err.contains("\"occurred_at\""), "{err}");
        // A huge claimed skew does not excuse a far-future time.
        assert!(screen(&arrival(NOW + 50 * year, "cardio"), &ctx(50 * year), &s).is_err());
        assert!(screen(&arrival(EARLIEST_MS - 1, "cardio"), &ctx(0), &s).is_err());
    }

    #[test]
    fn department_codes_are_checked_only_against_published_reference_data() {
        let refs = ReferenceData::bundled().unwrap();
        let mut other = refs.clone();
        other.departments.retain(|d| d.id != "cardio");
        let err = screen(&arrival(NOW, "cardio"), &ctx(0), &Screen::new(Some(&other))).unwrap_err();
        assert!(err.contains("\"department\""), "{err}");
        assert_eq!(screen(&arrival(NOW, "cardio"), &ctx(0), &Screen::new(None)), Ok(()), "nothing to check against");
    }

    #[test]
    fn only_devices_of_the_records_site_may_change_it() {
        let r = arrival(NOW, "cardio");
        assert_eq!(owner("west", "west", &r), Ok(()));
        assert!(owner("west", "east", &r).unwrap_err().contains("belongs to site \"west\""));
    }

    #[test]
    fn the_cache_reloads_after_a_clear() {
        let cache = ScreenCache::default();
        let loads = std::cell::Cell::new(0);
        let load = || {
            loads.set(loads.get() + 1);
            Ok::<_, ()>(None)
        };
        cache.get("main", load).unwrap();
        cache.get("main", load).unwrap();
        assert_eq!(loads.get(), 1);
        cache.clear();
        cache.get("main", load).unwrap();
        assert_eq!(loads.get(), 2);
    }
}
