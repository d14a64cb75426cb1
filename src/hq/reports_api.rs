//! Cross-site reports at HQ: the shared [`crate::reports`] figures over the records HQ holds.
//!
//! - `GET /v1/reports/summary?from=YYYY-MM-DD&to=YYYY-MM-DD[&site=CODE][&lang=en|zh-CN]`: JSON — the headline KPIs
//!   (with targets and whether each is met) and every table of the monthly report.
//! - `GET /v1/reports/table.csv?table=NAME&from=…&to=…[&site=…][&lang=…]`: one report table as CSV (the same
//!   writer as `guidedesk report`: BOM, header of column keys, CRLF).
//! - `GET /v1/overview[?from=…&to=…][&lang=…]`: an HTML page — sites, kiosks, last sync, records waiting,
//!   quarantine, KPIs against targets (defaults to the current month up to today).
//!
//! All three need the HQ reporting token (`Authorization: Bearer …`, see [`ReportsToken`]), never a kiosk
//! credential. Figures come from [`crate::reports::summarize`] — nothing is recomputed here. Records are filed
//! under their corrected business time ([`StoredRecord::corrected_business_ms`]): a record from a kiosk whose
//! clock was off is moved back by that kiosk's skew (its business time and, for arrivals and cases, its step and
//! event times, so durations stay as they were) before it is folded in.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{FixedOffset, NaiveDate};
use guidedesk_sync::DeviceId;
use guidedesk_sync::protocol::codes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::backend::HqBackend;
use super::server::{ApiError, HqState, bearer, blocking, now_ms};
use super::store::{HqError, StoredRecord};
use crate::model::{AnyRecord, Moment, RecordKind, ReferenceData};
use crate::reports::html::esc;
use crate::reports::summary::summarize;
use crate::reports::{Lang, Period, ReportParams, Summary, tables};

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

    fn matches(&self, presented: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare every byte, so the time taken does not tell how much matched.
        h.iter().zip(self.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// What each kiosk last said about its outbox (in memory, per HQ process).
#[derive(Debug, Clone, Default)]
pub struct OutboxReports(Arc<Mutex<HashMap<DeviceId, (u64, u64)>>>);

impl OutboxReports {
    /// Notes a kiosk's outbox length at `at_ms`, when the push carried the header.
    pub fn note(&self, device: DeviceId, headers: &HeaderMap, at_ms: u64) {
        let Some(n) = headers.get(OUTBOX_HEADER).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse().ok())
        else {
            return;
        };
        if let Ok(mut m) = self.0.lock() {
            m.insert(device, (n, at_ms));
        }
    }

    /// The last reported outbox length and when it was reported.
    pub fn get(&self, device: DeviceId) -> Option<(u64, u64)> {
        self.0.lock().ok().and_then(|m| m.get(&device).copied())
    }
}

fn check_token(state: &HqState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.api.reports_token.as_ref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            REPORTS_DISABLED,
            "reports are not enabled on this HQ: start it with --reports-token-file",
        ));
    };
    let Some(token) = bearer(headers) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "no reporting token was sent"));
    };
    if expected.matches(&token) {
        return Ok(());
    }
    if matches!(state.store.authenticate(&token), Ok(Ok(_))) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::UNAUTHORIZED,
            "a kiosk credential cannot read reports; use the HQ reporting token",
        ));
    }
    Err(ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "wrong reporting token"))
}

/// Query parameters of the report endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    /// First day (`YYYY-MM-DD`, local to HQ's reporting offset).
    pub from: Option<String>,
    /// Last day, included.
    pub to: Option<String>,
    /// One site's code; all sites when absent.
    pub site: Option<String>,
    /// `zh-CN` (default) or `en`.
    pub lang: Option<String>,
    /// The table (CSV endpoint).
    pub table: Option<String>,
}

fn parse_day(name: &str, v: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name}={s:?} is not a date (YYYY-MM-DD)"))),
    }
}

fn lang_of(q: &ReportQuery) -> Result<Lang, ApiError> {
    match q.lang.as_deref() {
        None => Ok(Lang::Zh),
        Some(s) => Lang::parse(s).ok_or_else(|| ApiError::bad_request(format!("lang={s:?}: use zh-CN or en"))),
    }
}

/// The report parameters of a query: both days are required unless `default_month` is set, in which case the
/// current month up to today is used.
fn params_of(q: &ReportQuery, offset: FixedOffset, default_month: bool) -> Result<ReportParams, ApiError> {
    let today = Moment(i64::try_from(now_ms()).unwrap_or(i64::MAX)).local_date(offset);
    let from = parse_day("from", q.from.as_deref())?;
    let to = parse_day("to", q.to.as_deref())?;
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (None, None) if default_month => (Period::month_of(today).from, today),
        (None, _) => return Err(ApiError::bad_request("from is missing (YYYY-MM-DD)")),
        (_, None) => return Err(ApiError::bad_request("to is missing (YYYY-MM-DD)")),
    };
    if from > to {
        return Err(ApiError::bad_request(format!("from={from} is after to={to}")));
    }
    if (to - from).num_days() > 366 * 3 {
        return Err(ApiError::bad_request("a report covers at most three years"));
    }
    Ok(ReportParams::new(Period::custom(from, to), offset, today))
}

fn site_of(q: &ReportQuery) -> Option<String> {
    q.site.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
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
    for kind in RecordKind::ALL.into_iter().filter(|k| *k != RecordKind::Audit) {
        let lo = if kind == RecordKind::Case { case_from } else { from };
        for id in store.ids_between(kind, site, lo.saturating_sub(margin), to.saturating_add(margin))? {
            let Some(s) = store.record(kind, id)? else { continue };
            let t = s.corrected_business_ms();
            if t >= lo && t < to {
                out.push(filed_record(&s));
            }
        }
    }
    Ok(out)
}

/// The reference data whose targets apply: the site's, or the data published to every site.
fn reference(store: &HqBackend, site: Option<&str>) -> Result<ReferenceData, ApiError> {
    // A site code no device uses sees exactly what is published to every site.
    match store.reference_for(site.unwrap_or("\u{0}all"))? {
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
}

fn json_response<T: Serialize>(v: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(v)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /v1/reports/summary`.
#[utoipa::path(get, path = "/v1/reports/summary", tag = "reports", security(("reports_token" = [])), params(("from" = Option<String>, Query, description = "first day, YYYY-MM-DD"), ("to" = Option<String>, Query, description = "last day (included), YYYY-MM-DD"), ("site" = Option<String>, Query, description = "one site; all sites when absent"), ("lang" = Option<String>, Query, description = "zh-CN (default) or en")), responses((status = 200, description = "the summary", body = SummaryJson), (status = 400, description = "bad query", body = super::openapi::ErrorJson), (status = 401, description = "no or wrong reporting token", body = super::openapi::ErrorJson), (status = 403, description = "a kiosk credential, or reports disabled", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
pub async fn summary(
    State(state): State<HqState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
        let lang = lang_of(&q)?;
        let params = params_of(&q, state.api.utc_offset, false)?;
        let site = site_of(&q);
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
        };
        json_response(&body)
    })
    .await
}

/// `GET /v1/reports/table.csv`.
#[utoipa::path(get, path = "/v1/reports/table.csv", tag = "reports", security(("reports_token" = [])), params(("from" = Option<String>, Query, description = "first day, YYYY-MM-DD"), ("to" = Option<String>, Query, description = "last day (included), YYYY-MM-DD"), ("site" = Option<String>, Query, description = "one site; all sites when absent"), ("lang" = Option<String>, Query, description = "zh-CN (default) or en"), ("table" = String, Query, description = "table name, e.g. kpis")), responses((status = 200, description = "the table as CSV", content_type = "text/csv", body = String), (status = 400, description = "bad query", body = super::openapi::ErrorJson), (status = 401, description = "no or wrong reporting token", body = super::openapi::ErrorJson), (status = 403, description = "a kiosk credential, or reports disabled", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
pub async fn table_csv(
    State(state): State<HqState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
        let lang = lang_of(&q)?;
        let params = params_of(&q, state.api.utc_offset, false)?;
        let Some(name) = q.table.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Err(ApiError::bad_request("table is missing (e.g. table=kpis)"));
        };
        let site = site_of(&q);
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
#[utoipa::path(get, path = "/v1/audit.csv", tag = "reports", security(("reports_token" = [])), params(("from" = String, Query, description = "first day, YYYY-MM-DD"), ("to" = String, Query, description = "last day (included), YYYY-MM-DD"), ("site" = Option<String>, Query, description = "one site; all sites when absent")), responses((status = 200, description = "the audit entries as CSV", content_type = "text/csv", body = String), (status = 400, description = "bad query", body = super::openapi::ErrorJson), (status = 401, description = "no or wrong reporting token", body = super::openapi::ErrorJson), (status = 403, description = "a kiosk credential, or reports disabled", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
pub async fn audit_csv(
    State(state): State<HqState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
        let offset = state.api.utc_offset;
        let params = params_of(&q, offset, false)?;
        let site = site_of(&q);
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
            let mut csv_out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(&mut out);
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

fn time_text(ms: u64, offset: FixedOffset) -> String {
    if ms == 0 {
        return "—".to_string();
    }
    let m = Moment(i64::try_from(ms).unwrap_or(i64::MAX));
    m.local(offset).format("%Y-%m-%d %H:%M").to_string()
}

/// `GET /v1/overview`: the HTML overview.
#[utoipa::path(get, path = "/v1/overview", tag = "reports", security(("reports_token" = [])), params(("from" = Option<String>, Query, description = "first day, YYYY-MM-DD"), ("to" = Option<String>, Query, description = "last day (included), YYYY-MM-DD"), ("site" = Option<String>, Query, description = "one site; all sites when absent"), ("lang" = Option<String>, Query, description = "zh-CN (default) or en")), responses((status = 200, description = "the overview page", content_type = "text/html", body = String), (status = 400, description = "bad query", body = super::openapi::ErrorJson), (status = 401, description = "no or wrong reporting token", body = super::openapi::ErrorJson), (status = 403, description = "a kiosk credential, or reports disabled", body = super::openapi::ErrorJson), (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson), (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson)))]
pub async fn overview(
    State(state): State<HqState>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
        let lang = lang_of(&q)?;
        let params = params_of(&q, state.api.utc_offset, true)?;
        let html = overview_html(&state, params, lang)?;
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
    })
    .await
}

fn overview_html(state: &HqState, params: ReportParams, lang: Lang) -> Result<String, ApiError> {
    let store = &state.store;
    let offset = params.offset;
    let devices = store.devices()?;
    let mut quarantined: BTreeMap<DeviceId, u64> = BTreeMap::new();
    for ((d, _), _) in store.quarantined()? {
        *quarantined.entry(d).or_default() += 1;
    }
    let mut sites: BTreeSet<String> = devices.iter().map(|(_, d)| d.site.clone()).collect();
    let global = reference(store, None)?;
    sites.extend(global.sites.iter().map(|s| s.id.clone()));
    let site_name =
        |code: &str| global.sites.iter().find(|s| s.id == code).map_or_else(|| code.to_string(), |s| s.name.clone());

    let t = |zh: &'static str, en: &'static str| lang.pick(zh, en);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
         td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:left}}td.n{{text-align:right}}\
         .ok{{color:#17692b}}.bad{{color:#a31515;font-weight:bold}}.small{{color:#777}}</style></head><body>\n",
        lang.tag(),
        t("总部概览", "HQ overview")
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1><p>{} {} – {} · {} {}</p>",
        t("总部概览", "HQ overview"),
        t("统计期间", "Period"),
        params.period.from,
        params.period.to,
        t("截至", "as of"),
        params.as_of
    );
    for site in &sites {
        let (summary, _, n) = site_summary(store, Some(site), params)?;
        let site_devices: Vec<_> = devices.iter().filter(|(_, d)| &d.site == site).collect();
        let q: u64 = site_devices.iter().map(|(id, _)| quarantined.get(id).copied().unwrap_or(0)).sum();
        let _ = writeln!(
            h,
            "<h2>{} <small>({})</small></h2><p>{}: {n} · {}: {q}</p>",
            esc(&site_name(site)),
            esc(site),
            t("本期记录", "Records in the period"),
            t("隔离的操作", "Quarantined ops")
        );
        let _ = writeln!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            t("导医台", "Desk"),
            t("设备", "Device"),
            t("最近同步", "Last sync"),
            t("待上传", "Records waiting"),
            t("隔离", "Quarantined"),
            t("状态", "State")
        );
        for (id, d) in &site_devices {
            let waiting = state
                .outbox
                .get(*id)
                .map_or_else(|| t("未知", "unknown").to_string(), |(n, at)| format!("{n} ({})", time_text(at, offset)));
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&d.desk),
                uuid::Uuid::from_u128(id.0),
                time_text(d.last_push_ms, offset),
                esc(&waiting),
                quarantined.get(id).copied().unwrap_or(0),
                if d.revoked_ms.is_some() { t("已吊销", "revoked") } else { t("正常", "active") }
            );
        }
        h.push_str("</table>\n");
        let _ = writeln!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>n</th><th>{}</th></tr>",
            t("指标", "KPI"),
            t("数值", "Value"),
            t("目标", "Target"),
            t("达标", "Met")
        );
        for k in summary.headline() {
            let (class, met) = match (k.small_n, k.meets) {
                (true, _) => ("small", t("样本少", "small n")),
                (false, Some(true)) => ("ok", t("是", "yes")),
                (false, Some(false)) => ("bad", t("否", "no")),
                (false, None) => ("", "—"),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"n {class}\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"{class}\">{}</td></tr>",
                esc(&crate::reports::labels::metric(k.metric, lang)),
                esc(&k.pct_text()),
                esc(&k.target.map_or_else(|| "—".to_string(), |t| t.display())),
                k.n,
                met
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}
