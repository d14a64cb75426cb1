//! Cross-site reports at HQ: the shared [`crate::reports`] figures over the records HQ holds.
//!
//! - `GET /v1/reports/summary?from=YYYY-MM-DD&to=YYYY-MM-DD[&site=CODE][&lang=en|zh-CN]`: JSON — the headline KPIs
//!   (with targets and whether each is met) and every table of the monthly report.
//! - `GET /v1/reports/table.csv?table=NAME&from=…&to=…[&site=…][&lang=…]`: one report table as CSV (the same
//!   writer as `guidedesk report`: BOM, header of column keys, CRLF).
//! - `GET /v1/audit.csv?from=…&to=…[&site=…]`: every kiosk's audit log, its hash chain checked at HQ.
//! - `GET /v1/overview[?from=…&to=…][&site=…][&lang=…]`: an HTML page — sites, kiosks, last sync, records waiting,
//!   quarantine, KPIs against targets (defaults to the current month up to today; one site with `site`).
//!
//! All of them need the HQ reporting token (`Authorization: Bearer …`, see [`ReportsToken`]), never a kiosk
//! credential. Figures come from [`crate::reports::summarize`] — nothing is recomputed here. Records are filed
//! under their corrected business time ([`StoredRecord::corrected_business_ms`]): a record from a kiosk whose
//! clock was off is moved back by that kiosk's skew (its business time and, for arrivals and cases, its step and
//! event times, so durations stay as they were) before it is folded in.
//!
//! # Query parameters
//!
//! The credential is checked first; then the query string is parsed strictly by [`parse_query`] (not by serde), and
//! anything it does not accept is answered **400 `bad_request`** with a message that begins
//! `query parameter "NAME": ` (or `query string: `, `query parameter name "…": `), before the store is touched:
//!
//! | parameter | accepted | `OpenAPI` schema |
//! |---|---|---|
//! | `from`, `to` | `YYYY-MM-DD` exactly (ASCII digits, a real day), 1970-01-01 to 9999-12-31; `from` ≤ `to`, at most [`MAX_SPAN_DAYS`] days apart | `format: date`, [`DAY_PATTERN`], length 10 |
//! | `site` | a code enrolment accepts ([`super::store::is_code`]): 1 to [`MAX_SITE_LEN`] characters, none a control character; matched as given | [`SITE_PATTERN`], `maxLength` 64 |
//! | `lang` | `zh-CN` or `en`, exactly ([`LANGS`]) | `enum` |
//! | `table` | one of [`TABLE_NAMES`] | `enum` |
//!
//! Every value is first refused when it holds a control character (any `char::is_control`, NUL included: such a
//! byte would otherwise reach PostgreSQL, which refuses NUL in text), is empty (`site=`: leave the parameter out
//! instead), or is longer than its parameter allows; a `%` not followed by two hex digits and percent-encoded bytes
//! that are not UTF-8 are refused too (`+` is a space, as in forms). A parameter the endpoint does not take
//! (another endpoint's, or any other name — names are case-sensitive) and a parameter given twice are refused,
//! naming it; a query string longer than [`MAX_QUERY_LEN`] bytes is refused as a whole. `from`/`to` are required
//! except on the overview, which takes both or neither. The `OpenAPI` document (`/openapi.json`) states the same
//! rules, so a fuzzer generating from it gets 400 for what it negates and never a 5xx.
//!
//! The push header [`OUTBOX_HEADER`] is checked by [`outbox_pending`] the same way: absent is fine; present, it must
//! be one decimal number 0 to [`MAX_OUTBOX_PENDING`], else 400 naming the header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use guidedesk_sync::DeviceId;
use guidedesk_sync::protocol::codes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backend::HqBackend;
use super::limits::{Caller, Refusal};
use super::server::{ApiError, HqState, blocking};
use super::store::{HqError, StoredRecord};
use crate::model::{AnyRecord, Moment, RecordKind, ReferenceData};
use crate::reports::summary::summarize;
use crate::reports::{Lang, ReportParams, Summary, tables};

mod overview;
mod query;
#[cfg(test)]
mod tests;

pub use overview::*;
pub use query::*;

/// The stable code of a refusal because no reporting token is configured.
pub const REPORTS_DISABLED: &str = "reports_disabled";

/// The JSON summary endpoint.
pub const SUMMARY_PATH: &str = "/v1/reports/summary";
/// The CSV table endpoint.
pub const TABLE_CSV_PATH: &str = "/v1/reports/table.csv";
/// The HTML overview page.
pub const OVERVIEW_PATH: &str = "/v1/overview";

/// Request header a kiosk may send on push: how many ops wait in its outbox (a decimal number).
pub const OUTBOX_HEADER: &str = guidedesk_sync::protocol::OUTBOX_PENDING_HEADER;

/// Shortest reporting token accepted.
pub const MIN_TOKEN_LEN: usize = 32;

/// The HQ reporting credential: a secret given to `guidedesk-hq serve --reports-token-file FILE`. HQ keeps only
/// its SHA-256 in memory and compares hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportsToken([u8; 32]);

impl std::fmt::Debug for ReportsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportsToken(…)")
    }
}

/// Why a reporting token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Too short to be a secret.
    #[error("the reporting token is {0} characters long; it must have at least {MIN_TOKEN_LEN}")]
    TooShort(usize),
    /// Not printable ASCII.
    #[error("the reporting token must be printable ASCII without spaces")]
    NotPrintable,
}

impl ReportsToken {
    /// A token from its text (the first line of the token file, trimmed).
    pub fn new(text: &str) -> Result<Self, TokenError> {
        let t = text.lines().next().unwrap_or("").trim();
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotPrintable);
        }
        if t.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort(t.len()));
        }
        Ok(Self(Sha256::digest(t.as_bytes()).into()))
    }

    pub(crate) fn matches(&self, presented: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare every byte, so the time taken does not tell how much matched.
        h.iter().zip(self.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// What each kiosk last said about its outbox (in memory, per HQ process).
#[derive(Debug, Clone, Default)]
pub struct OutboxReports(Arc<Mutex<HashMap<DeviceId, (u64, u64)>>>);

impl OutboxReports {
    /// Notes a kiosk's outbox length at `at_ms`, when the push carried a valid header (see [`outbox_pending`]; a
    /// push whose header is not valid is refused before this).
    pub fn note(&self, device: DeviceId, headers: &HeaderMap, at_ms: u64) {
        if let Ok(Some(n)) = outbox_pending(headers) {
            self.note_pending(device, n, at_ms);
        }
    }

    /// Notes that a kiosk reported `pending` ops in its outbox at `at_ms`.
    pub fn note_pending(&self, device: DeviceId, pending: u64, at_ms: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(device, (pending, at_ms));
        }
    }

    /// The last reported outbox length and when it was reported.
    pub fn get(&self, device: DeviceId) -> Option<(u64, u64)> {
        self.0.lock().ok().and_then(|m| m.get(&device).copied())
    }
}

/// The largest outbox length [`OUTBOX_HEADER`] may carry (`OpenAPI`: `integer`, `int64`, minimum 0).
pub const MAX_OUTBOX_PENDING: u64 = i64::MAX as u64;

/// The outbox length a push reports in [`OUTBOX_HEADER`]: `None` when the header is absent, 400 `bad_request`
/// naming the header when it is there but not one decimal number from 0 to [`MAX_OUTBOX_PENDING`] (ASCII digits
/// only: no sign, no spaces inside).
pub fn outbox_pending(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let bad = |problem: &str| ApiError::bad_request(format!("header {OUTBOX_HEADER:?}: {problem}"));
    let mut values = headers.get_all(OUTBOX_HEADER).iter();
    let Some(v) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(bad("given more than once"));
    }
    let digits = v.as_bytes();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad("not a number of ops (decimal digits, 0 to 9223372036854775807)"));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n <= MAX_OUTBOX_PENDING)
        .map(Some)
        .ok_or_else(|| bad("not a number of ops (decimal digits, 0 to 9223372036854775807)"))
}

/// Whether the caller may read reports: the reporting token only. The caller was established from the request's
/// `Authorization` header by [`super::limits::guard`], so no credential is looked up again here.
pub(crate) fn check_token(state: &HqState, caller: Option<&Caller>) -> Result<(), ApiError> {
    if state.api.reports_token.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            REPORTS_DISABLED,
            "reports are not enabled on this HQ: start it with --reports-token-file",
        ));
    }
    match caller {
        Some(Caller::Reports) => Ok(()),
        Some(Caller::Device(_)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::UNAUTHORIZED,
            "a kiosk credential cannot read reports; use the HQ reporting token",
        )),
        Some(Caller::Refused(Refusal::Malformed)) => Err(Refusal::Malformed.error()),
        Some(Caller::Anonymous) | None => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "no reporting token was sent"))
        }
        Some(Caller::Admin | Caller::Refused(_)) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "wrong reporting token"))
        }
    }
}

/// A record's copy filed under its corrected business time: when HQ corrected the time (the kiosk's clock was off
/// by more than the tolerance), every time the kiosk stamped on it moves back by the same skew.
pub fn filed_record(s: &StoredRecord) -> AnyRecord {
    let delta = s.corrected_business_ms() - s.record.occurred_at().0;
    let mut r = s.record.clone();
    if delta == 0 {
        return r;
    }
    let shift = |m: &mut Moment| m.0 = m.0.saturating_add(delta);
    match &mut r {
        AnyRecord::Arrival(a) => {
            shift(&mut a.arrived_at);
            a.steps.iter_mut().for_each(|e| shift(&mut e.at));
        }
        AnyRecord::Consultation(c) => shift(&mut c.at),
        AnyRecord::Feedback(f) => shift(&mut f.at),
        AnyRecord::Case(c) => {
            shift(&mut c.received_at);
            c.events.iter_mut().for_each(|e| shift(&mut e.at));
        }
        AnyRecord::FollowupTask(t) => shift(&mut t.created_at),
        AnyRecord::CallAttempt(c) => shift(&mut c.at),
        AnyRecord::Audit(a) => shift(&mut a.at),
        AnyRecord::CallClaim(c) => shift(&mut c.at),
        AnyRecord::Appointment(a) => {
            shift(&mut a.booked_at);
            a.events.iter_mut().for_each(|e| shift(&mut e.at));
        }
        AnyRecord::ShiftLog(l) => {
            shift(&mut l.at);
            l.reads.iter_mut().for_each(|r| shift(&mut r.at));
        }
    }
    r
}

/// The records a report over `params` needs (one site or all), each filed under its corrected business time.
///
/// The store's time index holds the kiosk's own business time, so the index is read with a margin of the largest
/// clock skew any device shows and the records are then selected by their corrected time.
pub fn report_records(store: &HqBackend, site: Option<&str>, params: &ReportParams) -> Result<Vec<AnyRecord>, HqError> {
    let offset = params.offset;
    let (from, to) = (params.period.start(offset).0, params.period.end(offset).0);
    let case_from = Moment::start_of_day(params.accountability_from(), offset).0.min(from);
    let margin = store
        .devices()?
        .iter()
        .map(|(_, d)| d.skew_ms.unsigned_abs())
        .max()
        .unwrap_or(0)
        .max(guidedesk_sync::protocol::MAX_FUTURE_SKEW_MS);
    let margin = i64::try_from(margin).unwrap_or(i64::MAX / 4);
    let mut out = Vec::new();
    // The audit log is not part of any report.
    let (task_first, task_last) = params.task_days();
    let task_to = Moment::start_of_day(task_last.succ_opt().unwrap_or(task_last), offset).0.max(to);
    for kind in RecordKind::ALL.into_iter().filter(|k| *k != RecordKind::Audit) {
        let (lo, hi) = match kind {
            RecordKind::Case => (case_from, to),
            // Discharge tasks are filed under their discharge date: the aggregator picks those of the period.
            RecordKind::FollowupTask => (Moment::start_of_day(task_first, offset).0.min(from), task_to),
            // Bookings are filed under the day booked, made up to a year before it.
            RecordKind::Appointment => (Moment::start_of_day(params.booking_days().0, offset).0.min(from), to),
            _ => (from, to),
        };
        for id in store.ids_between(kind, site, lo.saturating_sub(margin), hi.saturating_add(margin))? {
            let Some(s) = store.record(kind, id)? else { continue };
            let t = s.corrected_business_ms();
            if t >= lo && t < hi {
                out.push(filed_record(&s));
            }
        }
    }
    Ok(out)
}

/// What [`reference`] asks the store for when no site is named: the reference data of a site no device uses.
const EVERY_SITE_PROBE: &str = "\u{1}every site";

/// The reference data whose targets apply: the site's, or the data published to every site.
fn reference(store: &HqBackend, site: Option<&str>) -> Result<ReferenceData, ApiError> {
    // A site code no device uses sees exactly what is published to every site. The probe holds a control character,
    // so it is no site code (`SITE_PATTERN`), and no NUL, which PostgreSQL refuses in text.
    match store.reference_for(site.unwrap_or(EVERY_SITE_PROBE))? {
        Some((_, r)) => Ok(r),
        None => ReferenceData::bundled().map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, format!("bundled reference data: {e}"))
        }),
    }
}

/// The summary of one site (or all) over a period, with the reference data it used.
pub fn site_summary(
    store: &HqBackend,
    site: Option<&str>,
    params: ReportParams,
) -> Result<(Summary, ReferenceData, usize), ApiError> {
    let refs = reference(store, site)?;
    let records = report_records(store, site, &params)?;
    Ok((summarize(records.iter(), params, &refs), refs, records.len()))
}

/// A table as JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TableJson {
    /// Stable name (the CSV endpoint's `table=`).
    pub name: &'static str,
    /// Title in the requested language.
    pub title: &'static str,
    /// Column keys (the CSV header).
    pub columns: Vec<&'static str>,
    /// Rows of cell texts.
    pub rows: Vec<Vec<String>>,
}

/// The JSON summary of a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SummaryJson {
    /// The site, or `null` for all sites.
    pub site: Option<String>,
    /// First day.
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last day (included).
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// The day figures are as of.
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// The UTC offset local days are taken at.
    pub utc_offset: String,
    /// Records folded in (cases of the accountability look-back included).
    pub records: usize,
    /// The headline KPIs, in the documents' order.
    #[schema(value_type = Vec<Object>)]
    pub kpis: Vec<crate::reports::Kpi>,
    /// Every table of the monthly report.
    pub tables: Vec<TableJson>,
    /// Records of the period left out of every figure because a time on them is impossible (at most the first
    /// hundred are listed; `skipped_count` counts them all).
    pub skipped: Vec<SkippedJson>,
    /// How many records were left out.
    pub skipped_count: u64,
}

/// A record a report left out, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SkippedJson {
    /// Its kind (`arrival`, `case`, …).
    pub kind: String,
    /// Its id.
    pub id: String,
    /// The field and its value.
    pub reason: String,
}

fn json_response<T: Serialize>(v: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(v).map_err(|e| super::server::internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /v1/reports/summary`.
#[utoipa::path(get, path = "/v1/reports/summary", tag = "reports", security(("reports_token" = [])),
    params(
        ("from" = String, Query, format = Date, example = "2025-01-01", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "first day, YYYY-MM-DD (1970-01-01 to 9999-12-31; at most 1098 days before `to`)"),
        ("to" = String, Query, format = Date, example = "2025-01-31", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "last day (included), YYYY-MM-DD, not before `from`"),
        ("site" = Option<String>, Query, example = "main", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$", description = "one site's code, as enrolled (1 to 64 characters, no control character); all sites when absent"),
        ("lang" = inline(Option<super::openapi::LangParam>), Query, description = "language of titles and labels: zh-CN (default) or en"),
    ),
    responses(
        (status = 200, description = "the summary", body = SummaryJson),
        (status = 400, description = "a query parameter is missing, unknown, repeated, empty, too long or not valid; the message names it", body = super::openapi::ErrorJson),
        (status = 401, description = "no reporting token, a wrong one, or an Authorization header that is not `Bearer <token>`", body = super::openapi::ErrorJson),
        (status = 403, description = "a kiosk credential, or reports are not enabled", body = super::openapi::ErrorJson),
        (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson),
        (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson),
    )
)]
pub async fn summary(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, caller.as_ref().map(|Extension(c)| c))?;
        let q = parse_query(raw.as_deref(), SUMMARY_PARAMS)?;
        let lang = q.lang.unwrap_or(Lang::Zh);
        let params = params_of(&q, state.api.utc_offset, false)?;
        let site = q.site;
        let (s, refs, n) = site_summary(&state.store, site.as_deref(), params)?;
        let body = SummaryJson {
            site,
            from: params.period.from,
            to: params.period.to,
            as_of: params.as_of,
            utc_offset: params.offset.to_string(),
            records: n,
            kpis: s.headline().into_iter().cloned().collect(),
            tables: tables::monthly(&s, &refs, lang)
                .into_iter()
                .map(|t| TableJson {
                    name: t.name,
                    title: t.title(lang),
                    columns: t.columns.iter().map(|c| c.key).collect(),
                    rows: t.rows.into_iter().map(|r| r.into_iter().map(|c| c.text).collect()).collect(),
                })
                .collect(),
            skipped: s
                .skipped
                .iter()
                .map(|r| SkippedJson {
                    kind: r.kind.name().to_string(),
                    id: r.id.0.to_string(),
                    reason: r.reason.clone(),
                })
                .collect(),
            skipped_count: s.skipped_count(),
        };
        json_response(&body)
    })
    .await
}

/// `GET /v1/reports/table.csv`.
#[utoipa::path(get, path = "/v1/reports/table.csv", tag = "reports", security(("reports_token" = [])),
    params(
        ("table" = inline(super::openapi::TableParam), Query, example = "kpis", description = "the table (as in the summary's `tables[].name`)"),
        ("from" = String, Query, format = Date, example = "2025-01-01", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "first day, YYYY-MM-DD (1970-01-01 to 9999-12-31; at most 1098 days before `to`)"),
        ("to" = String, Query, format = Date, example = "2025-01-31", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "last day (included), YYYY-MM-DD, not before `from`"),
        ("site" = Option<String>, Query, example = "main", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$", description = "one site's code, as enrolled (1 to 64 characters, no control character); all sites when absent"),
        ("lang" = inline(Option<super::openapi::LangParam>), Query, description = "language of titles and labels: zh-CN (default) or en"),
    ),
    responses(
        (status = 200, description = "the table as CSV", content_type = "text/csv", body = String),
        (status = 400, description = "a query parameter is missing, unknown, repeated, empty, too long or not valid; the message names it", body = super::openapi::ErrorJson),
        (status = 401, description = "no reporting token, a wrong one, or an Authorization header that is not `Bearer <token>`", body = super::openapi::ErrorJson),
        (status = 403, description = "a kiosk credential, or reports are not enabled", body = super::openapi::ErrorJson),
        (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson),
        (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson),
    )
)]
pub async fn table_csv(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, caller.as_ref().map(|Extension(c)| c))?;
        let q = parse_query(raw.as_deref(), TABLE_CSV_PARAMS)?;
        let lang = q.lang.unwrap_or(Lang::Zh);
        let Some(name) = q.table else {
            return Err(bad_param("table", "table is missing (e.g. table=kpis)"));
        };
        let params = params_of(&q, state.api.utc_offset, false)?;
        let site = q.site;
        let (s, refs, _) = site_summary(&state.store, site.as_deref(), params)?;
        let all = tables::monthly(&s, &refs, lang);
        let Some(t) = all.iter().find(|t| t.name == name) else {
            let known: Vec<&str> = all.iter().map(|t| t.name).collect();
            return Err(ApiError::bad_request(format!("no table {name:?}; the tables are {}", known.join(", "))));
        };
        let mut out = Vec::new();
        t.write_csv(&mut out)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, e.to_string()))?;
        let file = format!(
            "attachment; filename=\"{}_{}_{}.csv\"",
            site.as_deref().map_or("all", |s| if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                s
            } else {
                "site"
            }),
            params.period.slug(),
            t.name
        );
        Ok(csv_attachment(out, &file))
    })
    .await
}

/// `GET /v1/audit.csv`: every kiosk's audit log for a period (one site or all), as CSV: site and device, then the
/// columns of the kiosk's own audit export, ordered by site, device and chain position, with `chain` saying whether
/// each entry's hash recomputes and follows the entry before it (`ok`, `altered`, `broken link`; `gap` when the
/// entry before it is outside the period or missing).
#[utoipa::path(get, path = "/v1/audit.csv", tag = "reports", security(("reports_token" = [])),
    params(
        ("from" = String, Query, format = Date, example = "2025-01-01", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "first day, YYYY-MM-DD (1970-01-01 to 9999-12-31; at most 1098 days before `to`)"),
        ("to" = String, Query, format = Date, example = "2025-01-31", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "last day (included), YYYY-MM-DD, not before `from`"),
        ("site" = Option<String>, Query, example = "main", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$", description = "one site's code, as enrolled (1 to 64 characters, no control character); all sites when absent"),
    ),
    responses(
        (status = 200, description = "the audit entries as CSV", content_type = "text/csv", body = String),
        (status = 400, description = "a query parameter is missing, unknown, repeated, empty, too long or not valid; the message names it", body = super::openapi::ErrorJson),
        (status = 401, description = "no reporting token, a wrong one, or an Authorization header that is not `Bearer <token>`", body = super::openapi::ErrorJson),
        (status = 403, description = "a kiosk credential, or reports are not enabled", body = super::openapi::ErrorJson),
        (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson),
        (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson),
    )
)]
pub async fn audit_csv(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, caller.as_ref().map(|Extension(c)| c))?;
        let offset = state.api.utc_offset;
        let q = parse_query(raw.as_deref(), AUDIT_CSV_PARAMS)?;
        let params = params_of(&q, offset, false)?;
        let site = q.site;
        let (from, to) = (params.period.start(offset).0, params.period.end(offset).0);
        let mut rows: Vec<(String, u128, crate::model::AuditEntry)> = Vec::new();
        for id in state.store.ids_between(RecordKind::Audit, site.as_deref(), from, to)? {
            if let Some(StoredRecord { site, device, record: AnyRecord::Audit(a), .. }) =
                state.store.record(RecordKind::Audit, id)?
            {
                rows.push((site, device, a));
            }
        }
        rows.sort_by(|x, y| (&x.0, x.1, x.2.chain_index).cmp(&(&y.0, y.1, y.2.chain_index)));
        let internal = |e: &dyn std::fmt::Display| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, e.to_string())
        };
        let mut out = b"\xEF\xBB\xBF".to_vec();
        {
            // `csv_safe` neutralises cells a spreadsheet would read as formulas (audit details are typed at desks).
            let mut csv_out = crate::csv_safe::Writer::new(&mut out);
            let mut head = vec!["site", "device"];
            head.extend(crate::export::columns(RecordKind::Audit));
            head.push("chain");
            csv_out.write_record(&head).map_err(|e| internal(&e))?;
            let mut prev: Option<(u128, u64, [u8; 32])> = None;
            for (site, device, entry) in &rows {
                let chain = chain_state(prev, *device, entry);
                prev = Some((*device, entry.chain_index, entry.hash));
                let mut row = vec![site.clone(), uuid::Uuid::from_u128(*device).to_string()];
                row.extend(crate::export::row(&AnyRecord::Audit(entry.clone()), offset, true));
                row.push(chain.to_string());
                csv_out.write_record(&row).map_err(|e| internal(&e))?;
            }
            csv_out.flush().map_err(|e| internal(&e))?;
        }
        let file = format!("attachment; filename=\"audit_{}.csv\"", params.period.slug());
        Ok(csv_attachment(out, &file))
    })
    .await
}

/// A CSV body served as a download under the `Content-Disposition` value `disposition`.
fn csv_attachment(body: Vec<u8>, disposition: &str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Whether an audit entry at HQ verifies: its hash recomputes, and it follows `prev` (the entry listed before it:
/// device, chain index, hash) or starts its device's chain.
fn chain_state(prev: Option<(u128, u64, [u8; 32])>, device: u128, entry: &crate::model::AuditEntry) -> &'static str {
    if crate::model::Chained::compute_hash(entry) != entry.hash {
        return "altered";
    }
    let expected = match prev {
        Some((d, i, h)) if d == device && i + 1 == entry.chain_index => h,
        _ if entry.chain_index == 0 => [0; 32],
        _ => return "gap",
    };
    if entry.prev_hash == expected { "ok" } else { "broken link" }
}
