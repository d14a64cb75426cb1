//! Demo shift log: the morning and afternoon handovers (each read by the next shift) and the day's work log.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{DayGen, DemoReport, id_at, pick};
use crate::model::reference::Session;
use crate::model::shiftlog::ReadMark;
use crate::model::{LogKind, Moment, ShiftLog, StaffRef};
use crate::store::{StoreError, WriteCtx};

const SUMMARIES: &[&str] = &[
    "接待来院患者，分诊顺畅，高峰时段挂号处排队较长已通知主管加开窗口",
    "协助老年患者自助机挂号，推送轮椅陪检",
    "处理患者咨询，发放科室宣传资料，大厅秩序良好",
];
const PENDING: &[&str] =
    &["借出轮椅 1 台未归还", "3 楼 B 超室患者投诉待客服中心回复", "失物招领：黑色雨伞一把", "自助机 2 号打印纸需更换"];
const OPINIONS: &[&str] = &["患者反映停车难", "建议增加大厅座椅", "家属表扬导医服务热情"];

impl DayGen<'_> {
    /// The day's shift log: handovers at 12:00 and 17:30, each read by the next shift, and the work log at 17:40.
    pub(super) fn shift_logs(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        at_time: &dyn Fn(u32, u32) -> Moment,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        let entries = [
            (LogKind::Handover, Session::Morning, at_time(12, 0), Some(at_time(13, 35))),
            (LogKind::Handover, Session::Afternoon, at_time(17, 30), Some(at_time(24 + 7, 55))),
            (LogKind::DailyLog, Session::Afternoon, at_time(17, 40), None),
        ];
        for (kind, shift, at, read_at) in entries {
            if at > self.now {
                continue;
            }
            let by = StaffRef(pick(rng, self.guides).clone());
            let pending: Vec<String> = (0..rng.random_range(0..3)).map(|_| (*pick(rng, PENDING)).to_string()).collect();
            let mut log = ShiftLog {
                id: id_at(rng, at),
                at,
                by: by.clone(),
                kind,
                day: self.day,
                shift: Some(shift),
                summary: format!("{}；接待约 {} 人", pick(rng, SUMMARIES), rng.random_range(80..220)),
                pending,
                opinions: rng.random_bool(0.4).then(|| (*pick(rng, OPINIONS)).to_string()),
                reads: Vec::new(),
            };
            if let Some(read_at) = read_at.filter(|t| *t <= self.now) {
                let reader =
                    self.guides.iter().find(|g| **g != by.0).map_or_else(|| by.clone(), |g| StaffRef(g.clone()));
                if reader != by {
                    let stamp = ctx.stamp();
                    log.reads.push(ReadMark { by: reader, at: read_at, stamp });
                }
            }
            ctx.put(&log)?;
            report.shift_logs += 1;
        }
        Ok(())
    }
}
