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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{FixedOffset, NaiveDate};
use guidedesk_sync::DeviceId;
use guidedesk_sync::protocol::codes;
use serde::Serialize;
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

// ---------------------------------------------------------------------------------------------------------------
// Query parameters (see the module documentation for the rules)

/// Longest query string a report endpoint reads (bytes, as sent: still percent-encoded).
pub const MAX_QUERY_LEN: usize = 1024;
/// Longest site code in a query (characters): as long as enrolment allows ([`super::store::is_code`]).
pub const MAX_SITE_LEN: usize = 64;
/// A site code in a query: the `OpenAPI` `pattern` of `site`, the rule enrolment codes follow
/// ([`super::store::is_code`]): 1 to 64 characters, none a control character (Unicode `Cc`).
pub const SITE_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$";
/// A day in a query: the `OpenAPI` `pattern` of `from` and `to` (and `format: date`).
pub const DAY_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
/// The most days a report's `to` may be after its `from` (three years).
pub const MAX_SPAN_DAYS: i64 = 366 * 3;
/// The languages of `lang`, exactly as written (the first is the default).
pub const LANGS: [&str; 2] = ["zh-CN", "en"];
/// The tables of `table=` (the monthly report's, in its order; checked against [`tables::monthly`] by a test).
pub const TABLE_NAMES: [&str; 21] = [
    "kpis",
    "arrivals_by_day",
    "arrivals_by_hour",
    "arrivals_by_department",
    "arrivals_by_channel",
    "arrivals_by_visit_type",
    "waiting_times",
    "consultations_by_channel",
    "consultations_by_concern",
    "consultations_by_department",
    "satisfaction_by_question",
    "satisfaction_by_day",
    "feedback_reasons",
    "cases_by_grade",
    "cases_by_department",
    "followup_by_group",
    "followup_by_department",
    "call_outcomes",
    "accountability_departments",
    "accountability_staff",
    "accountability_history",
];

/// The first day a query may name.
pub fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The last day a query may name.
pub fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
}

/// A query parameter of the report endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `from`: the first day.
    From,
    /// `to`: the last day, included.
    To,
    /// `site`: one site's code.
    Site,
    /// `lang`: the language of titles and labels.
    Lang,
    /// `table`: the table of the CSV endpoint.
    Table,
}

impl Param {
    /// Its name in a query.
    pub fn name(self) -> &'static str {
        match self {
            Param::From => "from",
            Param::To => "to",
            Param::Site => "site",
            Param::Lang => "lang",
            Param::Table => "table",
        }
    }

    /// Its longest value, in characters.
    pub fn max_len(self) -> usize {
        match self {
            Param::From | Param::To => 10,
            Param::Site => MAX_SITE_LEN,
            Param::Lang => 5,
            Param::Table => 32,
        }
    }
}

/// The parameters `GET /v1/reports/summary` takes.
pub const SUMMARY_PARAMS: &[Param] = &[Param::From, Param::To, Param::Site, Param::Lang];
/// The parameters `GET /v1/reports/table.csv` takes.
pub const TABLE_CSV_PARAMS: &[Param] = &[Param::Table, Param::From, Param::To, Param::Site, Param::Lang];
/// The parameters `GET /v1/audit.csv` takes.
pub const AUDIT_CSV_PARAMS: &[Param] = &[Param::From, Param::To, Param::Site];
/// The parameters `GET /v1/overview` takes.
pub const OVERVIEW_PARAMS: &[Param] = &[Param::From, Param::To, Param::Site, Param::Lang];

/// The query of a report endpoint, every value checked ([`parse_query`]); a parameter not given is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// First day (local to HQ's reporting offset).
    pub from: Option<NaiveDate>,
    /// Last day, included.
    pub to: Option<NaiveDate>,
    /// One site's code; all sites when absent.
    pub site: Option<String>,
    /// The language (`zh-CN` when absent).
    pub lang: Option<Lang>,
    /// The table (CSV endpoint), one of [`TABLE_NAMES`].
    pub table: Option<&'static str>,
}

/// A refusal of the query parameter `name`: 400 `bad_request`, the message starting with the parameter's name.
fn bad_param(name: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("query parameter {:?}: {problem}", shown(name)))
}

/// Untrusted text as it is quoted in a message: at most 40 characters (and `…`).
fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte); `None` when a `%` is not
/// followed by two hex digits.
fn form_decode(s: &str) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let (hi, lo) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
                out.push(hi << 4 | lo);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// One decoded name or value, or what is wrong with it.
fn decoded(raw: &str) -> Result<String, &'static str> {
    let bytes = form_decode(raw).ok_or("has a `%` not followed by two hex digits")?;
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text")
}

fn parse_day(p: Param, v: &str) -> Result<NaiveDate, ApiError> {
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    let day = shaped.then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()).flatten();
    let Some(day) = day else {
        return Err(bad_param(p.name(), format_args!("{}={:?} is not a date (YYYY-MM-DD)", p.name(), shown(v))));
    };
    if day < first_day() || day > last_day() {
        return Err(bad_param(p.name(), format_args!("{day} is outside {} – {}", first_day(), last_day())));
    }
    Ok(day)
}

/// Whether `s` is a site code as a query may name it ([`SITE_PATTERN`]): one enrolment could have given a kiosk
/// ([`super::store::is_code`]).
pub fn is_site_code(s: &str) -> bool {
    s.chars().count() <= MAX_SITE_LEN && super::store::is_code(s)
}

/// Checks one value of parameter `p` and stores it in `q`.
fn set_param(q: &mut ReportQuery, p: Param, v: &str) -> Result<(), ApiError> {
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(bad_param(p.name(), format_args!("contains a control character (U+{:04X})", u32::from(c))));
    }
    if v.is_empty() {
        return Err(bad_param(p.name(), "is empty (leave the parameter out instead)"));
    }
    let n = v.chars().count();
    if n > p.max_len() {
        return Err(bad_param(p.name(), format_args!("is {n} characters long; at most {}", p.max_len())));
    }
    match p {
        Param::From => q.from = Some(parse_day(p, v)?),
        Param::To => q.to = Some(parse_day(p, v)?),
        Param::Site => {
            if !is_site_code(v) {
                return Err(bad_param(
                    p.name(),
                    format_args!(
                        "site={:?} is not a site code (1 to {MAX_SITE_LEN} characters, no control character)",
                        shown(v)
                    ),
                ));
            }
            q.site = Some(v.to_string());
        }
        Param::Lang => {
            q.lang = Some(match v {
                "zh-CN" => Lang::Zh,
                "en" => Lang::En,
                _ => return Err(bad_param(p.name(), format_args!("lang={:?}: use zh-CN or en", shown(v)))),
            });
        }
        Param::Table => {
            let Some(name) = TABLE_NAMES.iter().find(|t| **t == v) else {
                return Err(bad_param(
                    p.name(),
                    format_args!("no table {:?}; the tables are {}", shown(v), TABLE_NAMES.join(", ")),
                ));
            };
            q.table = Some(name);
        }
    }
    Ok(())
}

/// Parses the raw query string of a report endpoint that takes the parameters `accepted`. Anything else is 400
/// `bad_request` with a message naming the parameter: an unknown or repeated parameter, an empty or overlong value,
/// a control character, bad percent-encoding or UTF-8, a value not of its parameter's form.
pub fn parse_query(raw: Option<&str>, accepted: &[Param]) -> Result<ReportQuery, ApiError> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY_LEN {
        return Err(ApiError::bad_request(format!("query string: {} bytes long; at most {MAX_QUERY_LEN}", raw.len())));
    }
    let mut q = ReportQuery::default();
    let mut seen: Vec<Param> = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decoded(raw_name).map_err(|problem| {
            ApiError::bad_request(format!("query parameter name {:?}: {problem}", shown(raw_name)))
        })?;
        let Some(p) = accepted.iter().copied().find(|p| p.name() == name) else {
            let names: Vec<&str> = accepted.iter().map(|p| p.name()).collect();
            return Err(bad_param(&name, format_args!("unknown parameter; this endpoint takes {}", names.join(", "))));
        };
        if seen.contains(&p) {
            return Err(bad_param(p.name(), "given more than once"));
        }
        seen.push(p);
        let value = decoded(raw_value).map_err(|problem| bad_param(p.name(), problem))?;
        set_param(&mut q, p, &value)?;
    }
    Ok(q)
}

/// The report parameters of a query: both days are required unless `default_month` is set, in which case the
/// current month up to today is used when neither is given.
fn params_of(q: &ReportQuery, offset: FixedOffset, default_month: bool) -> Result<ReportParams, ApiError> {
    let today = Moment(i64::try_from(now_ms()).unwrap_or(i64::MAX)).local_date(offset);
    let (from, to) = match (q.from, q.to) {
        (Some(f), Some(t)) => (f, t),
        (None, None) if default_month => (Period::month_of(today).from, today),
        (None, _) => return Err(bad_param("from", "from is missing (the first day, YYYY-MM-DD)")),
        (_, None) => return Err(bad_param("to", "to is missing (the last day, included, YYYY-MM-DD)")),
    };
    if from > to {
        return Err(bad_param("from", format_args!("{from} is after to={to}")));
    }
    if (to - from).num_days() > MAX_SPAN_DAYS {
        return Err(bad_param(
            "to",
            format_args!(
                "{to} is more than {MAX_SPAN_DAYS} days after from={from} (a report covers three years at most)"
            ),
        ));
    }
    Ok(ReportParams::new(Period::custom(from, to), offset, today))
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
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
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
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
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
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
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

fn time_text(ms: u64, offset: FixedOffset) -> String {
    if ms == 0 {
        return "—".to_string();
    }
    let m = Moment(i64::try_from(ms).unwrap_or(i64::MAX));
    m.local(offset).format("%Y-%m-%d %H:%M").to_string()
}

/// `GET /v1/overview`: the HTML overview.
#[utoipa::path(get, path = "/v1/overview", tag = "reports", security(("reports_token" = [])),
    params(
        ("from" = Option<String>, Query, format = Date, example = "2025-01-01", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "first day, YYYY-MM-DD (1970-01-01 to 9999-12-31); give both `from` and `to` or neither (then: this month up to today)"),
        ("to" = Option<String>, Query, format = Date, example = "2025-01-31", min_length = 10, max_length = 10, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "last day (included), YYYY-MM-DD, not before `from` and at most 1098 days after it"),
        ("site" = Option<String>, Query, example = "main", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$", description = "one site's code, as enrolled (1 to 64 characters, no control character); all sites when absent"),
        ("lang" = inline(Option<super::openapi::LangParam>), Query, description = "language of titles and labels: zh-CN (default) or en"),
    ),
    responses(
        (status = 200, description = "the overview page", content_type = "text/html", body = String),
        (status = 400, description = "a query parameter is missing, unknown, repeated, empty, too long or not valid; the message names it", body = super::openapi::ErrorJson),
        (status = 401, description = "no reporting token, a wrong one, or an Authorization header that is not `Bearer <token>`", body = super::openapi::ErrorJson),
        (status = 403, description = "a kiosk credential, or reports are not enabled", body = super::openapi::ErrorJson),
        (status = 429, description = "rate limited (Retry-After)", body = super::openapi::ErrorJson),
        (status = 503, description = "unavailable or timeout (Retry-After)", body = super::openapi::ErrorJson),
    )
)]
pub async fn overview(
    State(state): State<HqState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, &headers)?;
        let q = parse_query(raw.as_deref(), OVERVIEW_PARAMS)?;
        let lang = q.lang.unwrap_or(Lang::Zh);
        let params = params_of(&q, state.api.utc_offset, true)?;
        let html = overview_html(&state, q.site.as_deref(), params, lang)?;
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
    })
    .await
}

/// The overview page: every site (or only `only_site`) with its kiosks and KPIs.
fn overview_html(
    state: &HqState,
    only_site: Option<&str>,
    params: ReportParams,
    lang: Lang,
) -> Result<String, ApiError> {
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
    if let Some(only) = only_site {
        sites.retain(|s| s == only);
    }
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
        if summary.skipped_count() > 0 {
            let ids: Vec<String> =
                summary.skipped.iter().take(5).map(|r| format!("{} {}", r.kind.name(), r.id.0)).collect();
            let _ = writeln!(
                h,
                "<p class=\"bad\">{}: {} ({})</p>",
                t("时间异常、未计入的记录", "Records left out for an impossible time"),
                summary.skipped_count(),
                esc(&ids.join(", "))
            );
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The status, code and message of a refusal.
    fn refusal(e: ApiError) -> (u16, String, String) {
        let resp = e.into_response();
        let status = resp.status().as_u16();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let body = rt.block_on(axum::body::to_bytes(resp.into_body(), usize::MAX)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, v["code"].as_str().unwrap().to_string(), v["message"].as_str().unwrap().to_string())
    }

    /// Asserts that `raw` is refused with 400 `bad_request` and a message starting with `starts` and holding
    /// `needle`.
    fn refused(raw: &str, accepted: &[Param], starts: &str, needle: &str) {
        let e = parse_query(Some(raw), accepted).expect_err(raw);
        let (status, code, message) = refusal(e);
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{raw}: {message}");
        assert!(message.starts_with(starts), "{raw}: {message}");
        assert!(message.contains(needle), "{raw}: {message}");
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_valid_query_is_parsed() {
        let q = parse_query(Some("table=kpis&from=2025-01-01&to=2025-01-31&site=main_2-b&lang=en"), TABLE_CSV_PARAMS)
            .unwrap();
        assert_eq!(
            q,
            ReportQuery {
                from: Some(day(2025, 1, 1)),
                to: Some(day(2025, 1, 31)),
                site: Some("main_2-b".into()),
                lang: Some(Lang::En),
                table: Some("kpis"),
            }
        );
        assert_eq!(parse_query(None, OVERVIEW_PARAMS).unwrap(), ReportQuery::default());
        assert_eq!(parse_query(Some(""), OVERVIEW_PARAMS).unwrap(), ReportQuery::default());
        // Percent-encoding and `+` are decoded; empty pieces are skipped.
        let q = parse_query(Some("&lang=zh%2DCN&&site=a%5Fb&"), SUMMARY_PARAMS).unwrap();
        assert_eq!((q.lang, q.site.as_deref()), (Some(Lang::Zh), Some("a_b")));
    }

    #[test]
    fn a_control_character_in_any_parameter_is_refused_naming_it() {
        for p in [Param::From, Param::To, Param::Site, Param::Lang, Param::Table] {
            let name = p.name();
            let starts = format!("query parameter {name:?}: ");
            for bad in ["%00", "ma%00in", "%0A", "a%1Fb", "%7F", "%C2%85"] {
                refused(&format!("{name}={bad}"), TABLE_CSV_PARAMS, &starts, "contains a control character");
            }
        }
        refused("site=%00", OVERVIEW_PARAMS, "query parameter \"site\": ", "(U+0000)");
    }

    #[test]
    fn unknown_repeated_empty_and_overlong_parameters_are_refused_naming_them() {
        refused(
            "foo=1",
            SUMMARY_PARAMS,
            "query parameter \"foo\": ",
            "unknown parameter; this endpoint takes from, to",
        );
        // Parameter names are exact: another endpoint's parameter or another case is unknown.
        refused("lang=en", AUDIT_CSV_PARAMS, "query parameter \"lang\": ", "unknown parameter");
        refused("table=kpis", SUMMARY_PARAMS, "query parameter \"table\": ", "unknown parameter");
        refused("Site=main", SUMMARY_PARAMS, "query parameter \"Site\": ", "unknown parameter");
        refused("a%00b=1", SUMMARY_PARAMS, "query parameter \"a\\0b\": ", "unknown parameter");
        refused(&format!("{}=1", "n".repeat(200)), SUMMARY_PARAMS, "query parameter \"nnnn", "…\": unknown");
        refused("site=a&site=b", SUMMARY_PARAMS, "query parameter \"site\": ", "given more than once");
        refused("site=", SUMMARY_PARAMS, "query parameter \"site\": ", "is empty");
        refused("site", SUMMARY_PARAMS, "query parameter \"site\": ", "is empty");
        refused(&format!("site={}", "a".repeat(65)), SUMMARY_PARAMS, "query parameter \"site\": ", "at most 64");
        refused("from=2025-01-011", SUMMARY_PARAMS, "query parameter \"from\": ", "at most 10");
        refused(&format!("lang={}", "x".repeat(2000)), SUMMARY_PARAMS, "query string: ", "at most 1024");
    }

    #[test]
    fn bad_encoding_is_refused_naming_the_parameter() {
        refused("site=%zz", SUMMARY_PARAMS, "query parameter \"site\": ", "`%` not followed by two hex digits");
        refused("site=%4", SUMMARY_PARAMS, "query parameter \"site\": ", "`%` not followed by two hex digits");
        refused("site=%+1", SUMMARY_PARAMS, "query parameter \"site\": ", "`%` not followed by two hex digits");
        refused("site=%FF", SUMMARY_PARAMS, "query parameter \"site\": ", "is not UTF-8");
        refused("%FF=1", SUMMARY_PARAMS, "query parameter name \"%FF\": ", "is not UTF-8");
    }

    #[test]
    fn values_must_have_their_parameters_form() {
        for bad in ["2025-1-01", "%2B025-01-01", "2025-02-30", "2025/01/01", " 2025-01-1", "20250101", "2025-01-0a"] {
            let raw = format!("from={}", bad.replace(' ', "+"));
            refused(&raw, SUMMARY_PARAMS, "query parameter \"from\": ", "is not a date (YYYY-MM-DD)");
        }
        refused("to=1969-12-31", SUMMARY_PARAMS, "query parameter \"to\": ", "is outside 1970-01-01 – 9999-12-31");
        refused("to=0000-01-01", SUMMARY_PARAMS, "query parameter \"to\": ", "is outside");
        for bad in ["%C2%9F", "a%0D", "%1B%5B31m"] {
            refused(
                &format!("site={bad}"),
                SUMMARY_PARAMS,
                "query parameter \"site\": ",
                "contains a control character",
            );
        }
        for bad in ["EN", "zh", "zh-cn", "en-US", "fr"] {
            refused(&format!("lang={bad}"), SUMMARY_PARAMS, "query parameter \"lang\": ", "use zh-CN or en");
        }
        refused(
            "table=nope",
            TABLE_CSV_PARAMS,
            "query parameter \"table\": ",
            "no table \"nope\"; the tables are kpis",
        );
        refused("table=KPIS", TABLE_CSV_PARAMS, "query parameter \"table\": ", "no table");
        assert!(
            ["main", "east-2_b.1", "总院", "main site", "<b>site&1</b>", "🏥"].iter().all(|s| is_site_code(s))
                && is_site_code(&"x".repeat(64))
        );
        assert!(
            !is_site_code("") && !is_site_code(&"x".repeat(65)) && !is_site_code("a\u{85}b") && !is_site_code("\0")
        );
        let q = parse_query(Some("site=%E6%80%BB%E9%99%A2"), SUMMARY_PARAMS).unwrap();
        assert_eq!(q.site.as_deref(), Some("总院"));
    }

    #[test]
    fn the_period_is_checked_naming_the_parameter() {
        let offset = crate::store::china_offset();
        let q = |raw: &str| parse_query(Some(raw), OVERVIEW_PARAMS).unwrap();
        let check = |raw: &str, default_month: bool, starts: &str, needle: &str| {
            let (status, _, message) = refusal(params_of(&q(raw), offset, default_month).expect_err(raw));
            assert_eq!(status, 400, "{raw}");
            assert!(message.starts_with(starts) && message.contains(needle), "{raw}: {message}");
        };
        check("to=2025-01-01", false, "query parameter \"from\": ", "from is missing");
        check("from=2025-01-01", false, "query parameter \"to\": ", "to is missing");
        check("from=2025-01-01", true, "query parameter \"to\": ", "to is missing");
        check("", false, "query parameter \"from\": ", "from is missing");
        check(
            "from=2025-02-02&to=2025-02-01",
            false,
            "query parameter \"from\": ",
            "2025-02-02 is after to=2025-02-01",
        );
        check("from=2020-01-01&to=2023-01-04", false, "query parameter \"to\": ", "more than 1098 days after");
        let p = params_of(&q("from=2020-01-01&to=2023-01-03"), offset, false).unwrap();
        assert_eq!((p.period.from, p.period.to), (day(2020, 1, 1), day(2023, 1, 3)));
        let p = params_of(&q("from=9999-12-31&to=9999-12-31"), offset, false).unwrap();
        assert_eq!(p.period.to, last_day());
        // Neither day: this month up to today, when the endpoint allows it.
        assert!(params_of(&q(""), offset, true).is_ok());
    }

    #[test]
    fn the_outbox_header_is_a_number_or_refused_naming_it() {
        let headers = |vals: &[&[u8]]| {
            let mut h = HeaderMap::new();
            for v in vals {
                h.append(OUTBOX_HEADER, axum::http::HeaderValue::from_bytes(v).unwrap());
            }
            h
        };
        assert_eq!(outbox_pending(&headers(&[])).unwrap(), None);
        assert_eq!(outbox_pending(&headers(&[b"0"])).unwrap(), Some(0));
        assert_eq!(outbox_pending(&headers(&[b"9223372036854775807"])).unwrap(), Some(MAX_OUTBOX_PENDING));
        for bad in [&b"-1"[..], b"+1", b"1 2", b"", b"x", b"9223372036854775808", b"99999999999999999999", b"\xC3\xA9"]
        {
            let (status, code, message) = refusal(outbox_pending(&headers(&[bad])).unwrap_err());
            assert_eq!((status, code.as_str()), (400, "bad_request"));
            assert!(message.starts_with(&format!("header {OUTBOX_HEADER:?}: not a number")), "{message}");
        }
        let (_, _, message) = refusal(outbox_pending(&headers(&[b"1", b"2"])).unwrap_err());
        assert!(message.contains("given more than once"), "{message}");
    }

    #[test]
    fn table_names_are_the_monthly_reports() {
        let refs = ReferenceData::bundled().unwrap();
        let params = ReportParams::new(
            Period::custom(day(2025, 1, 1), day(2025, 1, 31)),
            crate::store::china_offset(),
            day(2025, 1, 31),
        );
        let s = summarize(std::iter::empty(), params, &refs);
        let names: Vec<&str> = tables::monthly(&s, &refs, Lang::En).iter().map(|t| t.name).collect();
        assert_eq!(names, TABLE_NAMES);
    }

    #[test]
    fn the_document_states_every_report_parameters_format() {
        let doc = serde_json::to_value(super::super::server::openapi()).unwrap();
        let endpoints: [(&str, &[Param], &[&str]); 4] = [
            (SUMMARY_PATH, SUMMARY_PARAMS, &["from", "to"]),
            (TABLE_CSV_PATH, TABLE_CSV_PARAMS, &["table", "from", "to"]),
            ("/v1/audit.csv", AUDIT_CSV_PARAMS, &["from", "to"]),
            (OVERVIEW_PATH, OVERVIEW_PARAMS, &[]),
        ];
        for (path, accepted, required) in endpoints {
            let op = &doc["paths"][path]["get"];
            let params = op["parameters"].as_array().unwrap();
            let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
            let mut want: Vec<&str> = accepted.iter().map(|p| p.name()).collect();
            let mut got = names.clone();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{path}: documented = accepted");
            for p in params {
                let name = p["name"].as_str().unwrap();
                assert_eq!(p["in"], "query");
                assert_eq!(p["required"].as_bool().unwrap_or(false), required.contains(&name), "{path} {name}");
                let s = &p["schema"];
                let text = s.to_string();
                match name {
                    "from" | "to" => {
                        assert_eq!(s["format"], "date", "{path} {name}");
                        assert_eq!(s["pattern"], DAY_PATTERN, "{path} {name}");
                        assert_eq!(s["maxLength"], 10, "{path} {name}");
                    }
                    "site" => {
                        assert_eq!(s["pattern"], SITE_PATTERN, "{path}");
                        assert_eq!(s["maxLength"], MAX_SITE_LEN, "{path}");
                    }
                    "lang" => assert!(text.contains(r#"["zh-CN","en"]"#), "{path}: {text}"),
                    "table" => assert_eq!(s["enum"], serde_json::json!(TABLE_NAMES), "{path}"),
                    other => panic!("{path}: undocumented rule for {other}"),
                }
            }
            let responses = op["responses"].as_object().unwrap();
            for code in ["200", "400", "401", "403", "429", "503"] {
                assert!(responses.contains_key(code), "{path} {code}");
            }
        }
    }

    #[test]
    fn every_site_probe_is_no_site_code() {
        assert!(!is_site_code(EVERY_SITE_PROBE) && !EVERY_SITE_PROBE.contains('\0'));
    }
}
