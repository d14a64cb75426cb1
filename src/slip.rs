//! The complainant's acknowledgement slip (投诉受理回执): a printable HTML page with the case number, the date of
//! receipt and the date by which the complainant will hear back.

use std::fmt::Write as _;

use chrono::FixedOffset;

use crate::model::reference::Session;
use crate::model::{Appointment, Case, ReferenceData};

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The slip as a self-contained HTML document (A5, prints as is).
pub fn slip_html(case: &Case, refs: &ReferenceData, offset: FixedOffset) -> String {
    let site = refs.sites.first();
    let hospital = site.map_or("", |s| s.name.as_str());
    let complaint_phone = site.and_then(|s| s.complaint_phone.as_deref());
    let received = case.received_at.local(offset).format("%Y年%m月%d日 %H:%M").to_string();
    let due = case.due.value.0.format("%Y年%m月%d日").to_string();
    let depts: Vec<String> = case
        .departments
        .iter()
        .map(|d| match refs.department(d) {
            Some(x) => match &x.phone {
                Some(p) => format!("{}（电话 {p}）", x.name),
                None => x.name.clone(),
            },
            None => d.clone(),
        })
        .collect();
    let phone_row = complaint_phone.map_or(String::new(), |p| {
        format!("<tr><td class=\"k\">投诉电话 Complaint line</td><td>{}</td></tr>\n", escape(p))
    });
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>投诉受理回执 {no}</title>
<style>
@page {{ size: A5; margin: 14mm; }}
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; font-size: 12pt; color: #111; }}
h1 {{ font-size: 18pt; text-align: center; margin: 0 0 4mm; }}
.sub {{ text-align: center; color: #444; margin-bottom: 8mm; }}
table {{ width: 100%; border-collapse: collapse; }}
td {{ border: 1px solid #999; padding: 2.5mm 3mm; vertical-align: top; }}
td.k {{ width: 28%; background: #f3f3f3; }}
.due {{ font-size: 14pt; font-weight: bold; }}
.foot {{ margin-top: 10mm; color: #444; font-size: 10pt; }}
</style></head><body>
<h1>{hospital} 投诉受理回执</h1>
<div class="sub">Acknowledgement of your complaint</div>
<table>
<tr><td class="k">受理编号 Case no.</td><td>{no}</td></tr>
<tr><td class="k">受理时间 Received</td><td>{received}</td></tr>
<tr><td class="k">投诉人 Complainant</td><td>{who}</td></tr>
<tr><td class="k">涉及科室 Department</td><td>{depts}</td></tr>
<tr><td class="k">事由 Summary</td><td>{facts}</td></tr>
<tr><td class="k">受理人 Received by</td><td>{by}</td></tr>
<tr><td class="k">答复期限 Reply by</td><td class="due">{due} 前</td></tr>
{phone_row}</table>
<p class="foot">我们将在上述日期前将处理结果告知您（按国家法定工作日计算）。请保留本回执，查询时请提供受理编号。<br>
We will tell you the outcome by the date above (working days). Please keep this slip and quote the case number.</p>
</body></html>
"#,
        hospital = escape(hospital),
        no = escape(&case.id.short()),
        received = escape(&received),
        who = escape(&case.complainant),
        depts = escape(&depts.join("、")),
        facts = escape(&case.facts),
        by = escape(&case.received_by.0),
        due = escape(&due),
    );
    h
}

/// The session names on a patient's slip.
fn session_zh(s: Session) -> &'static str {
    match s {
        Session::Morning => "上午 Morning",
        Session::Afternoon => "下午 Afternoon",
        Session::AllDay => "全天 All day",
        Session::Night => "夜诊 Evening",
    }
}

/// The weekday names on a patient's slip.
fn weekday_zh(d: chrono::Weekday) -> &'static str {
    ["周一", "周二", "周三", "周四", "周五", "周六", "周日"][d.num_days_from_monday() as usize]
}

/// The patient's guide slip (导诊单, the seed's 书面材料): where the department is, its phone and clinic hours, the
/// doctor and the doctor's sessions, and for a booking its day, session and number — a self-contained A6 page.
pub fn directory_slip_html(
    refs: &ReferenceData,
    department: &str,
    doctor: Option<&str>,
    booking: Option<&Appointment>,
) -> Result<String, String> {
    let d = refs.department(department).ok_or_else(|| format!("unknown department {department:?}"))?;
    let doc = match doctor {
        Some(code) => Some(refs.doctor(code).ok_or_else(|| format!("unknown doctor {code:?}"))?),
        None => None,
    };
    let hospital = refs.sites.first().map_or("", |s| s.name.as_str());
    let mut rows: Vec<(&str, String)> = vec![("科室 Department", format!("{} {}", d.name, d.name_en))];
    let place = d.location();
    if !place.is_empty() {
        rows.push(("位置 Where", place));
    }
    if let Some(p) = &d.phone {
        rows.push(("电话 Phone", p.clone()));
    }
    if !d.hours.is_empty() {
        rows.push(("门诊时间 Clinic hours", d.hours.clone()));
    }
    if let Some(doc) = doc {
        rows.push(("医生 Doctor", format!("{} {} {}", doc.name, doc.title, doc.specialty).trim().to_string()));
        let sessions: Vec<String> = refs
            .weekly_sessions(&doc.id)
            .into_iter()
            .map(|(w, s)| format!("{}{}", weekday_zh(w), session_zh(s).split(' ').next().unwrap_or("")))
            .collect();
        if !sessions.is_empty() {
            rows.push(("出诊 Sessions", sessions.join(" ")));
        }
    }
    if let Some(b) = booking {
        let when = match refs.appointment_policy.hours(b.session) {
            Some((start, end)) => {
                format!("{} {} {}–{}", b.day, session_zh(b.session), start.format("%H:%M"), end.format("%H:%M"))
            }
            None => format!("{} {}", b.day, session_zh(b.session)),
        };
        rows.push(("预约 Booked for", when));
        if let Some(slot) = &b.slot {
            rows.push(("时间 Time", slot.clone()));
        }
        rows.push(("预约号 Booking no.", b.id.short()));
        rows.push(("就诊人 Patient", b.patient_name.clone()));
    }
    let mut body = String::new();
    for (k, v) in rows {
        let _ = writeln!(body, "<tr><td class=\"k\">{}</td><td>{}</td></tr>", escape(k), escape(&v));
    }
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>导诊单 {dept}</title>
<style>
@page {{ size: A6; margin: 8mm; }}
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; font-size: 11pt; color: #111; }}
h1 {{ font-size: 15pt; text-align: center; margin: 0 0 3mm; }}
table {{ width: 100%; border-collapse: collapse; }}
td {{ border: 1px solid #999; padding: 1.8mm 2.5mm; vertical-align: top; }}
td.k {{ width: 34%; background: #f3f3f3; }}
.foot {{ margin-top: 4mm; color: #444; font-size: 9pt; }}
</style></head><body>
<h1>{hospital} 导诊单</h1>
<table>
{body}</table>
<p class="foot">请按时就诊；如需改约或取消，请提前致电科室或导医台。<br>Please come on time; call the department or the guide desk to change or cancel.</p>
</body></html>
"#,
        dept = escape(&d.name),
        hospital = escape(hospital),
    ))
}

/// Writes the acknowledgement slip of a case into `slips/` beside the store and opens it for printing; the file's
/// path.
pub fn write_case_slip(store: &crate::store::Store, id: crate::model::RecordId) -> Result<std::path::PathBuf, String> {
    let case: Case = store.get(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("no case {id}"))?;
    let html = slip_html(&case, &store.reference(), store.utc_offset());
    write_slip_file(store, &format!("case-{}.html", case.id.short()), &html)
}

/// Writes a slip into `slips/` beside the store and opens it for printing.
fn write_slip_file(store: &crate::store::Store, name: &str, html: &str) -> Result<std::path::PathBuf, String> {
    let dir = store.path().parent().map_or_else(|| std::path::PathBuf::from("slips"), |p| p.join("slips"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, html).map_err(|e| format!("{}: {e}", path.display()))?;
    open_in_viewer(&path);
    Ok(path)
}

/// Writes the guide slip into `slips/` beside the store and opens it for printing; the file's path.
pub fn write_directory_slip(
    store: &crate::store::Store,
    department: &str,
    doctor: Option<&str>,
    appointment: Option<crate::model::RecordId>,
) -> Result<std::path::PathBuf, String> {
    let booking: Option<Appointment> = match appointment {
        Some(id) => Some(store.get(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("no booking {id}"))?),
        None => None,
    };
    let html = directory_slip_html(&store.reference(), department, doctor, booking.as_ref())?;
    let name = match &booking {
        Some(b) => format!("booking-{}.html", b.id.short()),
        None => format!("guide-{}.html", department.chars().filter(char::is_ascii_alphanumeric).collect::<String>()),
    };
    write_slip_file(store, &name, &html)
}

/// Opens a file with the system's viewer (best effort: a kiosk without one still has the file).
pub fn open_in_viewer(path: &std::path::Path) {
    if cfg!(test) || std::env::var_os("GUIDEDESK_NO_OPEN").is_some() {
        return;
    }
    #[cfg(target_os = "windows")]
    let r = std::process::Command::new("cmd").args(["/C", "start", ""]).arg(path).spawn();
    #[cfg(target_os = "macos")]
    let r = std::process::Command::new("open").arg(path).spawn();
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    let r = std::process::Command::new("xdg-open").arg(path).spawn();
    drop(r);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_slip_says_where_when_and_whom_to_call() {
        let mut refs = ReferenceData::bundled().unwrap();
        let cardio = refs.departments.iter_mut().find(|d| d.id == "cardio").unwrap();
        cardio.building = "门诊楼".into();
        cardio.floor = "3F".into();
        cardio.room = "<301>".into();
        let doc = refs.doctors.iter().find(|d| d.department == "cardio").unwrap().clone();
        let html = directory_slip_html(&refs, "cardio", Some(&doc.id), None).unwrap();
        assert!(html.contains("门诊楼 3F &lt;301&gt;"), "location, escaped: {html}");
        assert!(html.contains("0571-87001002"), "{html}");
        assert!(html.contains(&doc.name), "{html}");
        assert!(directory_slip_html(&refs, "nowhere", None, None).unwrap_err().contains("nowhere"));
        assert!(directory_slip_html(&refs, "cardio", Some("ghost"), None).is_err());
    }

    #[test]
    fn the_slip_carries_the_complaint_line_and_the_departments_phones() {
        let refs = ReferenceData::bundled().unwrap();
        let form = crate::model::CaseForm {
            grade: Some(crate::model::CaseGrade::Complaint),
            channel: Some(crate::model::CaseChannel::InPerson),
            complainant: "王女士".into(),
            departments: vec!["cardio".into()],
            facts: "候诊时间过长".into(),
            ..crate::model::CaseForm::default()
        };
        let at = crate::model::Moment(1_795_399_200_000);
        let origin = crate::model::case::CaseOrigin {
            id: crate::model::RecordId::new_v7(at),
            at,
            by: crate::model::StaffRef("D001".into()),
            due: (chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), false),
            stamp: guidedesk_sync::Hlc::ZERO,
        };
        let case = form.into_record(&refs, origin).unwrap();
        let html = slip_html(&case, &refs, crate::model::common::china_offset());
        assert!(html.contains("投诉电话 Complaint line</td><td>0571-87000000"), "{html}");
        assert!(html.contains("心血管内科（电话 0571-87001002）"), "{html}");
        let mut bare = refs.clone();
        bare.sites[0].complaint_phone = None;
        assert!(!slip_html(&case, &bare, crate::model::common::china_offset()).contains("投诉电话"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
