//! `GET /v1/overview`: the HTML page of sites, kiosks, sync state and KPIs, its text from the locale files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::FixedOffset;
use guidedesk_sync::DeviceId;

use super::{OVERVIEW_PARAMS, check_token, params_of, parse_query, reference, site_summary};
use crate::hq::limits::Caller;
use crate::hq::server::{ApiError, HqState, blocking};
use crate::model::Moment;
use crate::reports::html::esc;
use crate::reports::{Lang, ReportParams};

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
        ("lang" = inline(Option<crate::hq::openapi::LangParam>), Query, description = "language of titles and labels: zh-CN (default) or en"),
    ),
    responses(
        (status = 200, description = "the overview page", content_type = "text/html", body = String),
        (status = 400, description = "a query parameter is missing, unknown, repeated, empty, too long or not valid; the message names it", body = crate::hq::openapi::ErrorJson),
        (status = 401, description = "no reporting token, a wrong one, or an Authorization header that is not `Bearer <token>`", body = crate::hq::openapi::ErrorJson),
        (status = 403, description = "a kiosk credential, or reports are not enabled", body = crate::hq::openapi::ErrorJson),
        (status = 429, description = "rate limited (Retry-After)", body = crate::hq::openapi::ErrorJson),
        (status = 503, description = "unavailable or timeout (Retry-After)", body = crate::hq::openapi::ErrorJson),
    )
)]
pub async fn overview(
    State(state): State<HqState>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        check_token(&state, caller.as_ref().map(|Extension(c)| c))?;
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

    let tr = lang.tr();
    let t = |key: &'static str| tr.t(key);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
         td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:left}}td.n{{text-align:right}}\
         .ok{{color:#17692b}}.bad{{color:#a31515;font-weight:bold}}.small{{color:#777}}</style></head><body>\n",
        lang.tag(),
        t("report.overview.title")
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1><p>{} {} – {} · {} {}</p>",
        t("report.overview.title"),
        t("report.overview.period"),
        params.period.from,
        params.period.to,
        t("report.overview.as_of"),
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
            t("report.overview.records"),
            t("report.overview.quarantined_ops")
        );
        if summary.skipped_count() > 0 {
            let ids: Vec<String> =
                summary.skipped.iter().take(5).map(|r| format!("{} {}", r.kind.name(), r.id.0)).collect();
            let _ = writeln!(
                h,
                "<p class=\"bad\">{}: {} ({})</p>",
                t("report.overview.skipped"),
                summary.skipped_count(),
                esc(&ids.join(", "))
            );
        }
        let _ = writeln!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            t("report.overview.desk"),
            t("report.overview.device"),
            t("report.overview.last_sync"),
            t("report.overview.records_waiting"),
            t("report.overview.quarantined"),
            t("report.overview.state")
        );
        for (id, d) in &site_devices {
            let waiting = state.outbox.get(*id).map_or_else(
                || t("report.overview.unknown").to_string(),
                |(n, at)| format!("{n} ({})", time_text(at, offset)),
            );
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&d.desk),
                uuid::Uuid::from_u128(id.0),
                time_text(d.last_push_ms, offset),
                esc(&waiting),
                quarantined.get(id).copied().unwrap_or(0),
                if d.revoked_ms.is_some() { t("report.overview.revoked") } else { t("report.overview.active") }
            );
        }
        h.push_str("</table>\n");
        let _ = writeln!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>n</th><th>{}</th></tr>",
            t("report.overview.kpi"),
            t("report.overview.value"),
            t("report.overview.target"),
            t("report.overview.met")
        );
        for k in summary.headline() {
            let (class, met) = match (k.small_n, k.meets) {
                (true, _) => ("small", t("report.overview.small_n")),
                (false, Some(true)) => ("ok", t("report.overview.yes")),
                (false, Some(false)) => ("bad", t("report.overview.no")),
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
        escalations(&mut h, store, site, &params, lang)?;
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

/// Days back the overview looks for cases still open (a dispute can stay open for months).
const OPEN_CASE_LOOK_BACK_DAYS: i64 = 400;

/// A site's escalations as of the page's day, whatever the period: every unfinished dispute and incident, named
/// (complainant masked), and the open cases due that day and past their deadline (督办) — what the site's
/// supervisors see on their alert strip.
fn escalations(
    h: &mut String,
    store: &crate::hq::backend::HqBackend,
    site: &str,
    params: &ReportParams,
    lang: Lang,
) -> Result<(), ApiError> {
    use crate::model::{AnyRecord, CaseGrade, RecordKind};
    let tr = lang.tr();
    let end = Moment::start_of_day(params.as_of, params.offset).plus_millis(86_400_000).0;
    let from = end.saturating_sub(OPEN_CASE_LOOK_BACK_DAYS * 86_400_000);
    let mut open = Vec::new();
    for id in store.ids_between(RecordKind::Case, Some(site), from, end)? {
        if let Some(s) = store.record(RecordKind::Case, id)?
            && let AnyRecord::Case(c) = s.record
            && c.is_open()
        {
            open.push(c);
        }
    }
    let due_today = open.iter().filter(|c| c.due.value.0 == params.as_of).count();
    let overdue = open.iter().filter(|c| c.due.value.0 < params.as_of).count();
    let mut serious: Vec<_> =
        open.iter().filter(|c| matches!(c.grade.value, CaseGrade::Dispute | CaseGrade::Incident)).collect();
    serious.sort_by_key(|c| (std::cmp::Reverse(c.grade.value), c.received_at));
    let _ = writeln!(h, "<h3>{}</h3>", tr.t("report.overview.escalations"));
    if serious.is_empty() && due_today == 0 && overdue == 0 {
        let _ = writeln!(h, "<p class=\"ok\">{}</p>", tr.t("report.overview.no_escalations"));
        return Ok(());
    }
    let class = if overdue > 0 { "bad" } else { "" };
    let _ = writeln!(
        h,
        "<p class=\"{class}\">{}</p>",
        esc(&tr.f("report.overview.due_counts", &[("overdue", &overdue), ("today", &due_today)]))
    );
    if serious.is_empty() {
        return Ok(());
    }
    let refs = reference(store, Some(site))?;
    let _ = writeln!(
        h,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        tr.t("report.overview.grade"),
        tr.t("report.overview.complainant"),
        tr.t("report.overview.department"),
        tr.t("report.overview.received"),
        tr.t("report.overview.due"),
    );
    for c in serious {
        let dept =
            c.departments.first().map(|d| crate::reports::labels::department(&refs, d, lang)).unwrap_or_default();
        let late = c.due.value.0 < params.as_of;
        let _ = writeln!(
            h,
            "<tr><td class=\"bad\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(crate::reports::labels::grade(c.grade.value, lang)),
            esc(&crate::reports::labels::mask_name(&c.complainant)),
            esc(&dept),
            c.received_at.local(params.offset).format("%Y-%m-%d %H:%M"),
            if late { "bad" } else { "" },
            c.due.value.0,
        );
    }
    h.push_str("</table>\n");
    Ok(())
}
