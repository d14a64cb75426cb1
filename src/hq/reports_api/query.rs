//! Report query strings, parsed strictly (see the parent module's documentation for the rules).

use chrono::{FixedOffset, NaiveDate};

use crate::hq::server::{ApiError, now_ms};
use crate::model::Moment;
use crate::reports::{Lang, Period, ReportParams};

/// Longest query string a report endpoint reads (bytes, as sent: still percent-encoded).
pub const MAX_QUERY_LEN: usize = 1024;
/// Longest site code in a query (characters): as long as enrolment allows ([`crate::hq::store::is_code`]).
pub const MAX_SITE_LEN: usize = 64;
/// A site code in a query: the `OpenAPI` `pattern` of `site`, the rule enrolment codes follow
/// ([`crate::hq::store::is_code`]): 1 to 64 characters, none a control character (Unicode `Cc`).
pub const SITE_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$";
/// A day in a query: the `OpenAPI` `pattern` of `from` and `to` (and `format: date`).
pub const DAY_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
/// The most days a report's `to` may be after its `from` (three years).
pub const MAX_SPAN_DAYS: i64 = 366 * 3;
/// The languages of `lang`, exactly as written (the first is the default).
pub const LANGS: [&str; 2] = ["zh-CN", "en"];
/// The tables of `table=` (the monthly report's, in its order; checked against [`tables::monthly`] by a test).
pub const TABLE_NAMES: [&str; 27] = [
    "kpis",
    "arrivals_by_day",
    "arrivals_by_hour",
    "arrivals_by_department",
    "arrivals_by_channel",
    "arrivals_by_visit_type",
    "arrivals_by_origin",
    "arrivals_by_heard_via",
    "cancellations_and_changes",
    "waiting_times",
    "appointments_by_day",
    "appointment_arrival_rate",
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
    "improvements",
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
pub(super) fn bad_param(name: &str, problem: impl std::fmt::Display) -> ApiError {
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
/// ([`crate::hq::store::is_code`]).
pub fn is_site_code(s: &str) -> bool {
    s.chars().count() <= MAX_SITE_LEN && crate::hq::store::is_code(s)
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
pub(super) fn params_of(q: &ReportQuery, offset: FixedOffset, default_month: bool) -> Result<ReportParams, ApiError> {
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
