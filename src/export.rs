//! Exports of records as CSV (UTF-8 with BOM, RFC 4180 quoting — opens correctly in Excel/WPS on Chinese Windows
//! and in LibreOffice) or JSON (an array of full records).
//!
//! CSV has one row per record and one column per field, ids included; list fields are joined with `;` and event
//! histories are summarised in columns (times of each step, the last event) with the full history in JSON. A CSV cell
//! that a spreadsheet could read as a formula is written with a leading `'` ([`crate::csv_safe`]).

use std::fmt::Write as _;
use std::io::Write;

use chrono::FixedOffset;

use crate::model::validate::mask_phone;
use crate::model::{AnyRecord, Moment, RecordKind, VisitStep};
use crate::store::{Store, StoreError};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with BOM.
    Csv,
    /// JSON array.
    Json,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding failed.
    #[error("cannot encode the export: {0}")]
    Encode(String),
}

/// Options of one export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Kind to export.
    pub kind: RecordKind,
    /// First instant included.
    pub from: Moment,
    /// First instant excluded.
    pub to: Moment,
    /// Format.
    pub format: Format,
    /// Mask phone numbers (`138****8000`).
    pub mask_phones: bool,
}

/// Writes the export to the file `path` through a temporary file beside it, renamed into place only when complete:
/// a failed export never leaves a truncated file under the requested name. Returns the number of records written.
pub fn export_to_path(store: &Store, opts: &ExportOptions, path: &std::path::Path) -> Result<u64, ExportError> {
    let tmp = path.with_extension("partial");
    let written = std::fs::File::create(&tmp).map_err(ExportError::from).and_then(|file| {
        let mut w = std::io::BufWriter::new(file);
        let n = export(store, opts, &mut w)?;
        w.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
        Ok(n)
    });
    match written.and_then(|n| std::fs::rename(&tmp, path).map(|()| n).map_err(Into::into)) {
        Ok(n) => Ok(n),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes the export to `out` and returns the number of records written.
pub fn export(store: &Store, opts: &ExportOptions, out: &mut dyn Write) -> Result<u64, ExportError> {
    let offset = store.utc_offset();
    match opts.format {
        Format::Csv => {
            // Every field goes through `csv_safe`: names, complaints, comments and audit details are typed at the
            // desk and must not open as formulas in a spreadsheet.
            let mut w = crate::csv_safe::Writer::with_bom(out)?;
            w.write_record(columns(opts.kind)).map_err(|e| ExportError::Encode(e.to_string()))?;
            let mut err = None;
            let n = store.for_each_between(opts.kind, opts.from, opts.to, |rec| {
                if let Err(e) = w.write_record(row(&rec, offset, opts.mask_phones)) {
                    err = Some(e.to_string());
                    return Err(StoreError::Conflict("export aborted".into()));
                }
                Ok(())
            });
            if let Some(e) = err {
                return Err(ExportError::Encode(e));
            }
            let n = n?;
            w.flush()?;
            Ok(n)
        }
        Format::Json => {
            out.write_all(b"[")?;
            let mut first = true;
            let mut io_err = None;
            let n = store.for_each_between(opts.kind, opts.from, opts.to, |mut rec| {
                if opts.mask_phones {
                    mask_record(&mut rec);
                }
                let r = (|| -> Result<(), ExportError> {
                    out.write_all(if first { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *out, &JsonRecord(&rec))
                        .map_err(|e| ExportError::Encode(e.to_string()))?;
                    Ok(())
                })();
                first = false;
                r.map_err(|e| {
                    io_err = Some(e);
                    StoreError::Conflict("export aborted".into())
                })
            });
            if let Some(e) = io_err {
                return Err(e);
            }
            let n = n?;
            out.write_all(b"\n]\n")?;
            out.flush()?;
            Ok(n)
        }
    }
}

/// Serialises the inner record without the enum wrapper.
struct JsonRecord<'a>(&'a AnyRecord);

impl serde::Serialize for JsonRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AnyRecord::Arrival(r) => r.serialize(s),
            AnyRecord::Consultation(r) => r.serialize(s),
            AnyRecord::Feedback(r) => r.serialize(s),
            AnyRecord::Case(r) => r.serialize(s),
            AnyRecord::FollowupTask(r) => r.serialize(s),
            AnyRecord::CallAttempt(r) => r.serialize(s),
            AnyRecord::Audit(r) => r.serialize(s),
            AnyRecord::CallClaim(r) => r.serialize(s),
            AnyRecord::Appointment(r) => r.serialize(s),
            AnyRecord::ShiftLog(r) => r.serialize(s),
        }
    }
}

fn mask_record(rec: &mut AnyRecord) {
    let m = |p: &mut Option<String>| {
        if let Some(x) = p {
            *x = mask_phone(x);
        }
    };
    match rec {
        AnyRecord::Arrival(a) => m(&mut a.phone),
        AnyRecord::Consultation(c) => m(&mut c.phone),
        AnyRecord::Feedback(f) => m(&mut f.contact_phone),
        AnyRecord::Case(c) => m(&mut c.complainant_phone),
        AnyRecord::FollowupTask(t) => t.phone = mask_phone(&t.phone),
        AnyRecord::Appointment(a) => a.phone = mask_phone(&a.phone),
        AnyRecord::CallAttempt(_) | AnyRecord::Audit(_) | AnyRecord::CallClaim(_) | AnyRecord::ShiftLog(_) => {}
    }
}

/// The CSV header of a kind.
pub fn columns(kind: RecordKind) -> Vec<&'static str> {
    match kind {
        RecordKind::Arrival => {
            let mut c = vec![
                "id",
                "arrived_at",
                "name",
                "sex",
                "age",
                "phone",
                "visit_type",
                "channel",
                "origin",
                "heard_via",
                "complaint",
                "priority",
                "needs",
                "department",
                "doctor",
                "designated",
                "handled_by",
                "previous_visit",
                "current_step",
                "current_step_since",
            ];
            c.extend(VisitStep::ALL.iter().map(|s| step_column(*s)));
            c.extend(["cancel_reason", "changes"]);
            c
        }
        RecordKind::Consultation => vec![
            "id",
            "at",
            "by",
            "channel",
            "name",
            "sex",
            "age",
            "phone",
            "address",
            "disease_course",
            "history",
            "disease_type",
            "intention",
            "concerns",
            "question",
            "answer",
            "referred_department",
            "referred_doctor",
            "appointment",
            "arrival",
        ],
        RecordKind::Feedback => {
            let mut c = vec!["id", "at", "survey_version", "overall"];
            c.extend(crate::model::Dimension::ALL.iter().map(|d| d.key()));
            c.extend(["reasons", "comment", "contact_phone", "complete", "chain_index", "hash"]);
            c
        }
        RecordKind::Case => vec![
            "id",
            "received_at",
            "received_by",
            "channel",
            "grade",
            "complainant",
            "complainant_phone",
            "relation",
            "departments",
            "staff_concerned",
            "facts",
            "request",
            "from_feedback",
            "assigned_department",
            "assignee",
            "status",
            "round",
            "due_date",
            "due_date_guessed",
            "handling_satisfaction",
            "closed_at",
            "events",
        ],
        RecordKind::FollowupTask => vec![
            "id",
            "created_at",
            "created_by",
            "source",
            "source_ref",
            "discharged_on",
            "diagnosis",
            "patient_name",
            "phone",
            "department",
            "inpatient",
            "due_from",
            "due_to",
            "status",
            "closed_at",
        ],
        RecordKind::CallAttempt => vec![
            "id",
            "task",
            "at",
            "by",
            "outcome",
            "recovery",
            "medication",
            "guidance_given",
            "revisit_reminder",
            "satisfaction",
            "suggestions",
            "worrying",
            "notes",
        ],
        RecordKind::Audit => {
            vec![
                "id",
                "at",
                "actor",
                "action",
                "target_kind",
                "target_id",
                "detail",
                "chain_index",
                "prev_hash",
                "hash",
            ]
        }
        RecordKind::CallClaim => vec!["id", "task", "at", "by", "released"],
        RecordKind::Appointment => vec![
            "id",
            "booked_at",
            "booked_by",
            "kind",
            "channel",
            "patient_name",
            "phone",
            "department",
            "doctor",
            "day",
            "session",
            "slot",
            "reason",
            "enquiry",
            "rescheduled_from",
            "overbooked",
            "status",
            "arrival",
            "history",
        ],
        RecordKind::ShiftLog => {
            vec!["id", "at", "by", "kind", "day", "shift", "summary", "pending", "opinions", "read_by"]
        }
    }
}

fn step_column(s: VisitStep) -> &'static str {
    match s {
        VisitStep::Triaged => "triaged_at",
        VisitStep::Registered => "registered_at",
        VisitStep::WithDoctor => "with_doctor_at",
        VisitStep::Paying => "paying_at",
        VisitStep::Exams => "exams_at",
        VisitStep::Treatment => "treatment_at",
        VisitStep::Done => "done_at",
        VisitStep::Admitted => "admitted_at",
        VisitStep::Left => "left_at",
        VisitStep::Cancelled => "cancelled_at",
    }
}

fn t(m: Moment, offset: FixedOffset) -> String {
    m.local(offset).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn opt(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

fn key<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|j| j.as_str().map(str::to_string)).unwrap_or_default()
}

fn phone(p: Option<&str>, mask: bool) -> String {
    match p {
        Some(p) if mask => mask_phone(p),
        Some(p) => p.to_string(),
        None => String::new(),
    }
}

/// One CSV row (local times at the site's offset).
pub fn row(rec: &AnyRecord, offset: FixedOffset, mask: bool) -> Vec<String> {
    match rec {
        AnyRecord::Arrival(a) => {
            let mut r = vec![
                a.id.to_string(),
                t(a.arrived_at, offset),
                a.name.clone(),
                key(&a.sex),
                a.age.map(|x| x.to_string()).unwrap_or_default(),
                phone(a.phone.as_deref(), mask),
                key(&a.visit_type),
                a.channel.key().to_string(),
                opt(a.origin.as_deref()),
                opt(a.heard_via.as_deref()),
                a.complaint.clone(),
                key(&a.priority),
                a.needs.iter().map(|n| n.key()).collect::<Vec<_>>().join(";"),
                a.department.value.clone(),
                a.doctor.value.as_ref().map(|d| d.doctor.clone()).unwrap_or_default(),
                a.doctor.value.as_ref().is_some_and(|d| d.designated).to_string(),
                a.handled_by.0.clone(),
                a.previous_visit.map(|p| p.to_string()).unwrap_or_default(),
                a.step().key().to_string(),
                t(a.step_since(), offset),
            ];
            r.extend(VisitStep::ALL.iter().map(|s| a.entered(*s).map(|m| t(m, offset)).unwrap_or_default()));
            r.push(
                a.steps
                    .iter()
                    .rev()
                    .find(|e| e.step == VisitStep::Cancelled)
                    .and_then(|e| e.reason.clone())
                    .unwrap_or_default(),
            );
            r.push(
                a.changes
                    .iter()
                    .map(|c| format!("{} {}→{}: {}", t(c.at, offset), c.from_department, c.to_department, c.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            r
        }
        AnyRecord::Consultation(c) => vec![
            c.id.to_string(),
            t(c.at, offset),
            c.by.0.clone(),
            c.channel.key().to_string(),
            opt(c.name.as_deref()),
            c.sex.map(|s| key(&s)).unwrap_or_default(),
            c.age.map(|x| x.to_string()).unwrap_or_default(),
            phone(c.phone.as_deref(), mask),
            opt(c.address.as_deref()),
            opt(c.disease_course.as_deref()),
            opt(c.history.as_deref()),
            opt(c.disease_type.as_deref()),
            opt(c.intention.as_deref()),
            c.concerns.iter().map(|x| x.key()).collect::<Vec<_>>().join(";"),
            c.question.clone(),
            opt(c.answer.as_deref()),
            opt(c.referred_department.as_deref()),
            opt(c.referred_doctor.as_deref()),
            c.appointment.value.map(|d| d.to_string()).unwrap_or_default(),
            c.arrival.value.map(|d| d.to_string()).unwrap_or_default(),
        ],
        AnyRecord::Feedback(f) => {
            let mut r = vec![f.id.to_string(), t(f.at, offset), f.survey_version.to_string(), f.overall.key().into()];
            r.extend(
                crate::model::Dimension::ALL
                    .iter()
                    .map(|d| f.rating(*d).map(|x| x.key().to_string()).unwrap_or_default()),
            );
            r.extend([
                f.reasons.join(";"),
                opt(f.comment.as_deref()),
                phone(f.contact_phone.as_deref(), mask),
                f.complete.to_string(),
                f.chain_index.to_string(),
                f.hash.iter().fold(String::with_capacity(64), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                }),
            ]);
            r
        }
        AnyRecord::Case(c) => vec![
            c.id.to_string(),
            t(c.received_at, offset),
            c.received_by.0.clone(),
            c.channel.key().into(),
            c.grade.value.key().into(),
            c.complainant.clone(),
            phone(c.complainant_phone.as_deref(), mask),
            opt(c.relation.as_deref()),
            c.departments.join(";"),
            c.staff_concerned.join(";"),
            c.facts.clone(),
            opt(c.request.as_deref()),
            c.from_feedback.map(|x| x.to_string()).unwrap_or_default(),
            opt(c.assigned_department.value.as_deref()),
            opt(c.assignee.value.as_deref()),
            c.current().key().into(),
            c.status.value.round.to_string(),
            c.due.value.0.to_string(),
            c.due.value.1.to_string(),
            c.handling_satisfaction.value.map(|r| r.key().to_string()).unwrap_or_default(),
            c.closed_at.value.map(|m| t(m, offset)).unwrap_or_default(),
            c.events
                .iter()
                .map(|e| format!("{} {} {}", t(e.at, offset), e.by, event_name(&e.kind)))
                .collect::<Vec<_>>()
                .join("; "),
        ],
        AnyRecord::FollowupTask(task) => {
            use crate::model::FollowupSource as S;
            let (source_ref, discharged, diagnosis) = match &task.source {
                S::Discharge { his_key, discharged_on, diagnosis } => {
                    (his_key.clone(), discharged_on.to_string(), opt(diagnosis.as_deref()))
                }
                S::OutpatientFirstVisit { arrival } => (arrival.to_string(), String::new(), String::new()),
                S::Feedback { feedback } => (feedback.to_string(), String::new(), String::new()),
                S::Case { case } => (case.to_string(), String::new(), String::new()),
                S::NoShow { appointment, day } => (appointment.to_string(), day.to_string(), String::new()),
                S::SpotCheck { task } => (task.to_string(), String::new(), String::new()),
                S::DischargeSecond { his_key, discharged_on } => {
                    (his_key.clone(), discharged_on.to_string(), String::new())
                }
                S::Chronic { his_key, discharged_on, round } => {
                    (format!("{his_key}#{round}"), discharged_on.to_string(), String::new())
                }
            };
            vec![
                task.id.to_string(),
                t(task.created_at, offset),
                task.created_by.0.clone(),
                task.source.kind_key().into(),
                source_ref,
                discharged,
                diagnosis,
                task.patient_name.clone(),
                phone(Some(&task.phone), mask),
                opt(task.department.as_deref()),
                task.inpatient.to_string(),
                task.due_from.to_string(),
                task.due_to.to_string(),
                task.status.value.key().into(),
                task.closed_at.value.map(|m| t(m, offset)).unwrap_or_default(),
            ]
        }
        AnyRecord::CallAttempt(c) => {
            let s = c.script.clone().unwrap_or_default();
            vec![
                c.id.to_string(),
                c.task.to_string(),
                t(c.at, offset),
                c.by.0.clone(),
                c.outcome.key().into(),
                opt(s.recovery.as_deref()),
                opt(s.medication.as_deref()),
                s.guidance_given.to_string(),
                s.revisit_reminder.to_string(),
                s.satisfaction.map(|r| r.key().to_string()).unwrap_or_default(),
                opt(s.suggestions.as_deref()),
                c.worrying.to_string(),
                opt(c.notes.as_deref()),
            ]
        }
        AnyRecord::Audit(a) => vec![
            a.id.to_string(),
            t(a.at, offset),
            a.actor.0.clone(),
            a.action.key().to_string(),
            a.target.map(|x| x.kind.name().to_string()).unwrap_or_default(),
            a.target.map(|x| x.id.to_string()).unwrap_or_default(),
            a.detail.clone(),
            a.chain_index.to_string(),
            crate::store::crypto::hex(&a.prev_hash),
            crate::store::crypto::hex(&a.hash),
        ],
        AnyRecord::CallClaim(c) => {
            vec![c.id.to_string(), c.task.to_string(), t(c.at, offset), c.by.0.clone(), c.released.to_string()]
        }
        AnyRecord::Appointment(a) => vec![
            a.id.to_string(),
            t(a.booked_at, offset),
            a.booked_by.0.clone(),
            a.kind.key().into(),
            a.channel.key().into(),
            a.patient_name.clone(),
            phone(Some(&a.phone), mask),
            a.department.clone(),
            opt(a.doctor.as_deref()),
            a.day.to_string(),
            a.session.key().into(),
            opt(a.slot.as_deref()),
            opt(a.reason.as_deref()),
            a.enquiry.map(|e| e.to_string()).unwrap_or_default(),
            a.rescheduled_from.map(|e| e.to_string()).unwrap_or_default(),
            opt(a.overbooked.as_deref()),
            a.status().key().into(),
            a.arrival().map(|e| e.to_string()).unwrap_or_default(),
            a.events
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}{}",
                        t(e.at, offset),
                        e.by,
                        e.status.key(),
                        e.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ],
        AnyRecord::ShiftLog(l) => vec![
            l.id.to_string(),
            t(l.at, offset),
            l.by.0.clone(),
            l.kind.key().into(),
            l.day.to_string(),
            l.shift.map(|s| s.key().to_string()).unwrap_or_default(),
            l.summary.clone(),
            l.pending.join("; "),
            opt(l.opinions.as_deref()),
            l.reads.iter().map(|r| format!("{} {}", t(r.at, offset), r.by)).collect::<Vec<_>>().join("; "),
        ],
    }
}

/// The stable name of a case event.
pub fn event_name(kind: &crate::model::CaseEventKind) -> &'static str {
    use crate::model::CaseEventKind as K;
    match kind {
        K::Received => "received",
        K::Assigned { .. } => "assigned",
        K::Investigating => "investigating",
        K::Resolved { .. } => "resolved",
        K::NotEstablished => "not_established",
        K::Notified => "notified",
        K::Closed { .. } => "closed",
        K::Escalated { .. } => "escalated",
        K::ReferredLegal => "referred_legal",
        K::Reopened => "reopened",
        K::Note => "note",
        K::Proposed { .. } => "proposed",
        K::Approved { .. } => "approved",
        K::ImprovementPlanned { .. } => "improvement_planned",
        K::ImprovementDone { .. } => "improvement_done",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{ArrivalChannel, ArrivalForm, AuditAction, FeedbackForm, Rating, Sex, StaffRef, VisitType};
    use crate::store::{ManualClock, StoreOptions, china_offset};

    /// 2026-11-23 10:00 in China.
    const T0: i64 = 1_795_399_200_000;

    const PAYLOADS: [&str; 6] = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"];

    fn csv_cells(store: &Store, kind: RecordKind) -> Vec<Vec<String>> {
        let opts = ExportOptions {
            kind,
            from: Moment(i64::MIN),
            to: Moment(i64::MAX),
            format: Format::Csv,
            mask_phones: false,
        };
        let mut buf = Vec::new();
        export(store, &opts, &mut buf).unwrap();
        assert!(buf.starts_with(b"\xEF\xBB\xBF"));
        let mut rd = csv::ReaderBuilder::new().from_reader(&buf[3..]);
        rd.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
    }

    #[test]
    fn csv_exports_neutralise_formula_cells_of_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(Moment(T0)));
        let store = Store::open_with(dir.path(), StoreOptions { clock, utc_offset: china_offset() }).unwrap();
        let refs = store.reference();
        for p in PAYLOADS {
            store
                .write(|ctx| {
                    let form = ArrivalForm {
                        name: "张三".into(),
                        sex: Some(Sex::Male),
                        visit_type: Some(VisitType::Return),
                        channel: Some(ArrivalChannel::WalkIn),
                        complaint: "头痛".into(),
                        department: refs.departments[0].id.clone(),
                        ..ArrivalForm::default()
                    };
                    let draft = form.validate(&refs, store.today()).unwrap();
                    let (id, now, stamp) = (ctx.new_id(), ctx.now(), ctx.stamp());
                    let mut a = draft.into_record(id, now, StaffRef("D001".into()), stamp);
                    // Set after validation: a record from another kiosk or an older version is not re-validated.
                    a.name = p.to_string();
                    a.complaint = p.to_string();
                    crate::command::desk::file_arrival(ctx, &a)?;
                    let fb = FeedbackForm {
                        survey_version: 1,
                        overall: Some(Rating::Dissatisfied),
                        comment: "x".into(),
                        complete: true,
                        ..FeedbackForm::default()
                    };
                    let mut f = fb.into_record(ctx.new_id(), now).unwrap();
                    f.comment = Some(p.to_string());
                    ctx.append_feedback(f)?;
                    ctx.audit(&StaffRef(p.to_string()), AuditAction::Export, None, p)?;
                    Ok(())
                })
                .unwrap();
        }
        for (kind, cols) in [
            (RecordKind::Arrival, &["name", "complaint"][..]),
            (RecordKind::Feedback, &["comment"][..]),
            (RecordKind::Audit, &["actor", "detail"][..]),
        ] {
            let header = columns(kind);
            let rows = csv_cells(&store, kind);
            assert_eq!(rows.len(), PAYLOADS.len(), "{kind}");
            let mut got: Vec<&str> = Vec::new();
            for row in &rows {
                assert!(row.iter().all(|c| !crate::csv_safe::looks_like_formula(c)), "{kind}: {row:?}");
                for col in cols {
                    let i = header.iter().position(|h| h == col).unwrap();
                    got.push(&row[i]);
                }
            }
            for p in PAYLOADS {
                let want = format!("'{p}");
                // The audit log cleans control characters out of its detail; the actor column keeps them all.
                assert!(got.contains(&want.as_str()), "{kind}: {want:?} in {got:?}");
            }
        }
    }
}
