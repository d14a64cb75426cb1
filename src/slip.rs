//! The complainant's acknowledgement slip (投诉受理回执): a printable HTML page with the case number, the date of
//! receipt and the date by which the complainant will hear back.

use std::fmt::Write as _;

use chrono::FixedOffset;

use crate::model::{Case, ReferenceData};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
