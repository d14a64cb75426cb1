//! The guides' shift log (交班记录本) and daily work log (工作日志): what the shift did, what the next shift must
//! pick up, and the opinions patients and staff voiced (经营部工作手册 3.2.4.8: "将意见写在交班记录本上"; 3.2.4.12:
//! "每天下班前必须做好当天工作日志"). Shared with every desk and office of the site; the next shift marks a handover
//! as read (接班), and those marks merge from any desk.

use chrono::NaiveDate;
use guidedesk_sync::Hlc;
use serde::{Deserialize, Serialize};

use super::common::{Merge, Moment, RecordId, StaffRef, merge_events};
use super::reference::Session;
use super::validate::{self, Problem, ValidationErrors, limits};

/// Which book an entry is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// 交班记录: handed to the next shift, which marks it read.
    Handover,
    /// 工作日志: the day's summary, written before leaving.
    DailyLog,
}

impl LogKind {
    /// Every kind, in display order.
    pub const ALL: [LogKind; 2] = [LogKind::Handover, LogKind::DailyLog];

    /// Stable key (locale key suffix, export value).
    pub fn key(self) -> &'static str {
        match self {
            LogKind::Handover => "handover",
            LogKind::DailyLog => "daily_log",
        }
    }
}

/// The next shift's mark that it read a handover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMark {
    /// Who read it.
    pub by: StaffRef,
    /// When.
    pub at: Moment,
    /// HLC stamp of the write.
    pub stamp: Hlc,
}

/// One entry of the shift log or the daily log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftLog {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When it was written.
    pub at: Moment,
    /// Who wrote it.
    pub by: StaffRef,
    /// Handover or daily log.
    pub kind: LogKind,
    /// The local day of the shift.
    pub day: NaiveDate,
    /// The shift (the clinic session it was written in), if any.
    pub shift: Option<Session>,
    /// What the shift did (工作情况).
    pub summary: String,
    /// What the next shift must pick up, one matter per line (未完事项).
    pub pending: Vec<String>,
    /// Opinions of patients and staff collected in the shift (意见).
    pub opinions: Option<String>,
    /// Read marks of the next shift, ordered by stamp.
    pub reads: Vec<ReadMark>,
}

impl ShiftLog {
    /// Whether `who` has marked the entry read.
    pub fn read_by(&self, who: &StaffRef) -> bool {
        self.reads.iter().any(|r| &r.by == who)
    }

    /// Marks the entry read by `who` (once per person; the writer does not read their own handover).
    pub fn mark_read(&mut self, who: StaffRef, at: Moment, stamp: Hlc) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if self.kind != LogKind::Handover {
            errs.push("kind", Problem::Conflict("only a handover is marked read"));
        } else if who == self.by {
            errs.push("by", Problem::Conflict("the next shift marks a handover read, not its writer"));
        } else if self.read_by(&who) {
            errs.push("by", Problem::Conflict("already marked read"));
        }
        errs.into_result(|| ())?;
        self.reads.push(ReadMark { by: who, at, stamp });
        Ok(())
    }
}

impl Merge for ShiftLog {
    fn merge(&mut self, other: &Self) {
        merge_events(&mut self.reads, &other.reads, |r| r.stamp);
    }
}

/// At most this many pending matters on one entry.
pub const MAX_PENDING: usize = 20;

/// The log form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShiftLogForm {
    /// Handover or daily log (chosen).
    pub kind: Option<LogKind>,
    /// What the shift did.
    pub summary: String,
    /// Pending matters, one per line.
    pub pending: String,
    /// Opinions collected.
    pub opinions: String,
}

impl ShiftLogForm {
    /// Validates the form and makes the entry, written at `at` on `day` in `shift`.
    pub fn into_record(
        &self,
        id: RecordId,
        at: Moment,
        by: StaffRef,
        day: NaiveDate,
        shift: Option<Session>,
    ) -> Result<ShiftLog, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if self.kind.is_none() {
            errs.push("kind", Problem::Required);
        }
        let summary = validate::text(&mut errs, "summary", &self.summary, limits::LONG, true);
        let opinions = validate::opt_text(&mut errs, "opinions", &self.opinions, limits::LONG);
        let mut pending = Vec::new();
        for line in self.pending.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(l) = validate::opt_text(&mut errs, "pending", line, limits::SHORT) {
                pending.push(l);
            }
        }
        if pending.len() > MAX_PENDING {
            errs.push("pending", Problem::OutOfRange { min: 0, max: i64::try_from(MAX_PENDING).unwrap_or(i64::MAX) });
        }
        errs.into_result(|| ShiftLog {
            id,
            at,
            by,
            kind: self.kind.unwrap_or(LogKind::Handover),
            day,
            shift,
            summary,
            pending,
            opinions,
            reads: Vec::new(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn form() -> ShiftLogForm {
        ShiftLogForm {
            kind: Some(LogKind::Handover),
            summary: "上午接待 120 人，轮椅 3 次".into(),
            pending: "  3 楼 B 超室王女士投诉待回复\n\n借出轮椅 2 台未还 ".into(),
            opinions: String::new(),
        }
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn stamp(n: u64) -> Hlc {
        Hlc { wall_ms: n, logical: 0, node: 1 }
    }

    /// 经营部工作手册 3.2.4.8 and 3.2.4.12: the handover carries what the next shift must pick up, one matter per
    /// line; the summary is required, the rest optional.
    #[test]
    fn a_handover_needs_its_summary_and_keeps_each_pending_matter() {
        let by = StaffRef("D001".into());
        let log = form()
            .into_record(RecordId::new_v7(Moment(1)), Moment(1), by.clone(), day(), Some(Session::Morning))
            .unwrap();
        assert_eq!(log.pending, ["3 楼 B 超室王女士投诉待回复", "借出轮椅 2 台未还"]);
        assert_eq!(log.opinions, None);
        let e = ShiftLogForm { summary: " ".into(), kind: None, ..form() }
            .into_record(RecordId::new_v7(Moment(1)), Moment(1), by.clone(), day(), None)
            .unwrap_err();
        assert_eq!((e.get("summary"), e.get("kind")), (Some(&Problem::Required), Some(&Problem::Required)));
        let many = ShiftLogForm { pending: "事项\n".repeat(MAX_PENDING + 1), ..form() };
        assert!(
            many.into_record(RecordId::new_v7(Moment(1)), Moment(1), by, day(), None)
                .unwrap_err()
                .get("pending")
                .is_some()
        );
    }

    #[test]
    fn read_marks_of_two_desks_merge_and_the_writer_cannot_mark_their_own() {
        let writer = StaffRef("D001".into());
        let base = form().into_record(RecordId::new_v7(Moment(1)), Moment(1), writer.clone(), day(), None).unwrap();
        assert!(base.clone().mark_read(writer, Moment(2), stamp(2)).is_err());
        let (mut a, mut b) = (base.clone(), base);
        a.mark_read(StaffRef("D002".into()), Moment(3), stamp(3)).unwrap();
        b.mark_read(StaffRef("K001".into()), Moment(4), stamp(4)).unwrap();
        let (mut x, mut y) = (a.clone(), b.clone());
        x.merge(&b);
        y.merge(&a);
        assert_eq!(x, y);
        assert_eq!(x.reads.len(), 2);
        assert!(x.read_by(&StaffRef("K001".into())) && x.read_by(&StaffRef("D002".into())));
        assert!(x.mark_read(StaffRef("K001".into()), Moment(5), stamp(5)).is_err(), "once per person");
    }
}
