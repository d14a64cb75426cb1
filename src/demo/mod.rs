//! Realistic demo data for every record kind, written through the same validation and outbox path as the UI.
//!
//! Deterministic for a given seed: the same options give the same records (ids included) in a fresh store. Days
//! run up to today; today's visits stop at the current time and are still in progress, so the board looks live.

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::reference::{Role, Staff};
use crate::model::{
    self, ArrivalChannel, ArrivalForm, CallAttemptForm, CallOutcome, CaseChannel, CaseEventKind, CaseForm, CaseGrade,
    CaseStatus, Concern, ConsultationChannel, ConsultationForm, Dimension, FeedbackForm, FollowupSource,
    FollowupStatus, FollowupTask, Lww, Moment, Need, Priority, Rating, RecordId, ReferenceData, Sex, StaffRef,
    VisitStep, VisitType,
};
use crate::policy;
use crate::store::{Store, StoreError, WriteCtx};

mod bookings;
mod shiftlog;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Number of days, ending today.
    pub days: u32,
    /// Arrivals per day (other kinds scale with it).
    pub per_day: u32,
    /// Random seed.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { days: 30, per_day: 400, seed: 1 }
    }
}

/// What was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DemoReport {
    /// Arrivals written.
    pub arrivals: u64,
    /// Consultations written.
    pub consultations: u64,
    /// Feedback written.
    pub feedback: u64,
    /// Cases written.
    pub cases: u64,
    /// Follow-up tasks written.
    pub followup_tasks: u64,
    /// Call attempts written.
    pub call_attempts: u64,
    /// Call claims written (the last day's calls: who opened which task).
    pub call_claims: u64,
    /// Bookings written (with the arrivals their check-ins made counted under `arrivals`).
    pub appointments: u64,
    /// Shift handovers and daily logs written.
    pub shift_logs: u64,
}

impl DemoReport {
    /// Total records.
    pub fn total(&self) -> u64 {
        self.arrivals
            + self.consultations
            + self.feedback
            + self.cases
            + self.followup_tasks
            + self.call_attempts
            + self.call_claims
            + self.appointments
            + self.shift_logs
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于",
    "蒋", "蔡", "欧阳", "司马",
];
const GIVEN: &[&str] = &[
    "秀英", "桂英", "秀兰", "玉兰", "建华", "建国", "志强", "志明", "伟", "敏", "静", "丽", "强", "磊", "军", "洋",
    "勇", "艳", "杰", "娟", "涛", "明", "超", "秀珍", "霞", "平", "刚", "桂兰", "子涵", "梓萱", "浩然", "一诺", "宇轩",
    "欣怡", "俊杰", "淑芬", "德明", "国强", "海燕", "晓东",
];
const PLACES: &[&str] = &["本市城区", "本市郊县", "邻市", "外省", "本区", "开发区"];
const HEARD: &[&str] = &["亲友介绍", "微信公众号", "网络搜索", "电视广告", "社区义诊", "老病人", "医生推荐"];
const DURATIONS: &[&str] = &["一天", "两天", "三天", "一周", "半个月", "一个月", "半年"];
const CANCEL_REASONS: &[&str] = &["患者临时有事改日再来", "挂错科室", "等候时间过长离开", "医生停诊"];
/// Improvement measures departments commit to after a complaint (整改措施).
const IMPROVEMENTS: &[&str] = &[
    "候诊区增设叫号屏，候诊超过 30 分钟主动告知原因",
    "科室晨会学习服务用语，每月抽查一次",
    "检查结果增加短信通知，减少患者往返",
    "收费窗口高峰时段增开一个窗口",
    "护士站公示陪护和探视规定",
];

const LATE_REASONS: &[&str] = &["涉及多个科室，调查需时较长", "等待当事医生休假返岗后核实", "患者要求补充材料后再答复"];
const CHANGE_REASONS: &[&str] = &["分诊后症状更符合其他科室", "患者要求改挂专家号", "原科室号源已满"];
const WORRYING: &[&str] = &["伤口红肿渗液", "出院后持续发热", "胸痛再发", "血糖控制不佳"];
const RELATIONS: &[&str] = &["本人", "配偶", "子女", "父母", "亲属"];
const CASE_FACTS: &[&str] = &[
    "候诊时间过长，无人解释原因",
    "收费处工作人员态度生硬",
    "检查报告出具延迟，耽误复诊",
    "导医指引错误，多走了两个楼层",
    "对治疗效果不满意，要求退费",
    "病房卫生间清洁不及时",
    "建议增加自助挂号机",
    "医生问诊时间太短",
];
const QUESTIONS: &[&str] = &[
    "请问周末有没有专家门诊？",
    "做胃镜需要提前预约吗？",
    "膝关节置换手术大概多少费用？",
    "孩子发烧应该挂哪个科？",
    "医保异地可以直接结算吗？",
    "体检套餐有哪些？",
    "复查需要带哪些资料？",
];

/// The PIN of every demo staff account.
pub const DEMO_PIN: &str = "1234";

/// Installs demo staff accounts (as reference data) when the store has none, and returns their ids.
fn ensure_staff(store: &Store) -> Result<Vec<String>, StoreError> {
    let refs = store.reference();
    if !refs.staff.is_empty() {
        return Ok(refs.staff.iter().filter(|s| s.active).map(|s| s.id.clone()).collect());
    }
    let mut data: ReferenceData = (*refs).clone();
    let people = [
        ("D001", "陈晓燕", Role::Guide),
        ("D002", "李婷", Role::Guide),
        ("D003", "王芳", Role::Guide),
        ("D004", "赵丽", Role::GuideLead),
        ("K001", "刘敏", Role::CustomerService),
        ("K002", "孙静", Role::CustomerService),
        ("K003", "周主任", Role::Supervisor),
        ("A001", "系统管理员", Role::Administrator),
    ];
    // Every demo account has the same PIN: hash it once (argon2id is deliberately slow, ~0.3 s a hash).
    let pin_hash = crate::staff::hash_pin(DEMO_PIN).map_err(StoreError::Conflict)?;
    let mut staff = Vec::with_capacity(people.len());
    for (id, name, role) in people {
        staff.push(Staff {
            id: id.into(),
            name: name.into(),
            role,
            department: None,
            pin_hash: pin_hash.clone(),
            active: true,
        });
    }
    data.staff = staff;
    store.apply_reference(data, "demo")?;
    Ok(people.iter().map(|p| p.0.to_string()).collect())
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, xs: &[(T, u32)]) -> T {
    let total: u32 = xs.iter().map(|x| x.1).sum();
    let mut r = rng.random_range(0..total.max(1));
    for (v, w) in xs {
        if r < *w {
            return *v;
        }
        r -= w;
    }
    xs[0].0
}

fn id_at(rng: &mut ChaCha8Rng, at: Moment) -> RecordId {
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes);
    RecordId(uuid::Builder::from_unix_timestamp_millis(at.0.max(0) as u64, &bytes).into_uuid())
}

fn mobile(rng: &mut ChaCha8Rng) -> String {
    format!("1{}{:09}", pick(rng, &[3, 5, 7, 8, 9]), rng.random_range(0..1_000_000_000u32))
}

fn name(rng: &mut ChaCha8Rng) -> String {
    format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN))
}

/// Records per durable transaction at least (whole days are added until a transaction holds this many, or a third
/// of the records written before it, whichever is more).
///
/// One transaction a day made seeding superlinear: the blind name and phone indexes take random keys, so in a large
/// store nearly every insert copies its own B-tree leaf, once per commit. Batching days lets the leaves one commit
/// copies take many inserts each, and the commit (and its fsync) is paid once per ~20 000 records instead of ~900.
/// Past ~60 000 records one commit already rewrites most leaves of those indexes, so transactions then grow with
/// the store (a third of it): seeding 1 200 000 records commits about 15 times instead of 60 and writes 2.3 GB instead
/// of 10.7 GB. redb writes the changed pages out as its cache fills, so memory stays near the cache size (peak RSS
/// 88 MB at 1 200 000 records).
pub const TX_RECORDS: u64 = 20_000;

/// Fills the store, whole days per durable transaction (see [`TX_RECORDS`]). The records do not depend on where
/// the transactions end.
pub fn generate(store: &Store, opts: DemoOptions) -> Result<DemoReport, StoreError> {
    let staff = ensure_staff(store)?;
    let refs = store.reference();
    let guides: Vec<String> = staff.iter().filter(|s| s.starts_with('D')).cloned().collect();
    let cs: Vec<String> = staff.iter().filter(|s| s.starts_with('K')).cloned().collect();
    let guides = if guides.is_empty() { staff.clone() } else { guides };
    let cs = if cs.is_empty() { staff.clone() } else { cs };
    let leader = refs
        .staff
        .iter()
        .find(|s| s.active && s.role == Role::Supervisor)
        .map_or_else(|| cs.first().cloned().unwrap_or_default(), |s| s.id.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    // Bookings draw from their own stream, so the other records are what they were before bookings existed.
    let mut booking_rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x00b0_0c1d);
    let mut log_rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5b1f_7106);
    let today = store.today();
    let now = store.now();
    let offset = store.utc_offset();
    let mut report = DemoReport::default();
    let first = today.checked_sub_days(Days::new(u64::from(opts.days.saturating_sub(1)))).unwrap_or(today);
    let mut day = first;
    let mut day_arrivals: Vec<RecordId> = Vec::new();
    let mut done = false;
    while !done {
        let tx_start = report.total();
        let tx_records = TX_RECORDS.max(tx_start / 3);
        store.write(|ctx| {
            // Whole days, until the transaction holds about TX_RECORDS records.
            while report.total() - tx_start < tx_records {
                let at_time =
                    |h: u32, m: u32| Moment::start_of_day(day, offset).plus_millis(i64::from(h * 3600 + m * 60) * 1000);
                let g = DayGen { refs: &refs, day, now, offset, guides: &guides, cs: &cs, leader: &leader };
                day_arrivals.clear();
                g.arrivals(ctx, &mut rng, opts.per_day, &at_time, &mut day_arrivals, &mut report)?;
                g.consultations(ctx, &mut rng, opts.per_day / 5, &at_time, &day_arrivals, &mut report)?;
                g.feedback(ctx, &mut rng, opts.per_day / 6, &at_time, &mut report)?;
                g.cases(ctx, &mut rng, (opts.per_day / 80).max(1), &at_time, &mut report)?;
                g.discharges(ctx, &mut rng, (opts.per_day / 20).max(1), &at_time, &mut report)?;
                g.calls(ctx, &mut rng, &at_time, &mut report)?;
                g.bookings(ctx, &mut booking_rng, opts.per_day / 10, &at_time, &mut report)?;
                g.shift_logs(ctx, &mut log_rng, &at_time, &mut report)?;
                if day >= today {
                    done = true;
                    break;
                }
                day = day.succ_opt().unwrap_or(today);
            }
            Ok(())
        })?;
    }
    Ok(report)
}

struct DayGen<'a> {
    refs: &'a ReferenceData,
    day: NaiveDate,
    now: Moment,
    offset: chrono::FixedOffset,
    guides: &'a [String],
    cs: &'a [String],
    /// The supervisor who approves transfers (批转).
    leader: &'a str,
}

impl DayGen<'_> {
    fn arrivals(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        per_day: u32,
        at_time: &dyn Fn(u32, u32) -> Moment,
        ids: &mut Vec<RecordId>,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        let n = if per_day == 0 { 0 } else { per_day - per_day / 10 + rng.random_range(0..=per_day / 5) };
        let mut times: Vec<Moment> = (0..n)
            .map(|_| {
                // Morning peak: 60% between 07:30 and 11:30.
                let mins = if rng.random_bool(0.6) { rng.random_range(450..690) } else { rng.random_range(690..1050) };
                at_time(0, mins).plus_millis(rng.random_range(0..60_000))
            })
            .filter(|m| *m <= self.now)
            .collect();
        times.sort();
        for at in times {
            let dept = pick(rng, &self.refs.departments).clone();
            let symptom = dept.symptoms.first().map_or("不适", String::as_str);
            let symptom =
                dept.symptoms.get(rng.random_range(0..dept.symptoms.len().max(1))).map_or(symptom, String::as_str);
            let band = weighted(rng, &[(0u8, 12), (1, 55), (2, 33)]);
            let age = match band {
                0 => rng.random_range(1..14),
                1 => rng.random_range(14..60),
                _ => rng.random_range(60..95),
            };
            let on_duty = self.refs.doctors_on_duty(self.day, Some(&dept.id));
            let doctor =
                if !on_duty.is_empty() && rng.random_bool(0.35) { Some(pick(rng, &on_duty).id.clone()) } else { None };
            let mut needs = Vec::new();
            if age >= 75 && rng.random_bool(0.5) {
                needs.push(Need::Elderly);
            }
            for (need, p) in [
                (Need::Wheelchair, 0.04),
                (Need::Escort, 0.03),
                (Need::Stretcher, 0.005),
                (Need::Disabled, 0.01),
                (Need::Interpreter, 0.003),
            ] {
                if rng.random_bool(p) {
                    needs.push(need);
                }
            }
            let form = ArrivalForm {
                name: name(rng),
                sex: Some(if rng.random_bool(0.52) { Sex::Female } else { Sex::Male }),
                age: age.to_string(),
                phone: if rng.random_bool(0.75) { mobile(rng) } else { String::new() },
                visit_type: Some(if rng.random_bool(0.55) { VisitType::First } else { VisitType::Return }),
                channel: Some(weighted(
                    rng,
                    &[
                        (ArrivalChannel::WalkIn, 45),
                        (ArrivalChannel::OnlineBooking, 25),
                        (ArrivalChannel::PhoneBooking, 12),
                        (ArrivalChannel::Referral, 8),
                        (ArrivalChannel::CommunityEvent, 4),
                        (ArrivalChannel::Emergency, 3),
                        (ArrivalChannel::Other, 3),
                    ],
                )),
                origin: (*pick(rng, PLACES)).to_string(),
                heard_via: (*pick(rng, HEARD)).to_string(),
                complaint: format!("{symptom}{}", pick(rng, DURATIONS)),
                priority: weighted(rng, &[(Priority::Normal, 93), (Priority::Urgent, 5), (Priority::Emergency, 2)]),
                needs,
                department: dept.id.clone(),
                designated: doctor.is_some() && rng.random_bool(0.6),
                doctor: doctor.unwrap_or_default(),
                previous_visit: None,
            };
            let by = StaffRef(pick(rng, self.guides).clone());
            let draft = form.validate(self.refs, self.day)?;
            let id = id_at(rng, at);
            let stamp = ctx.stamp();
            let mut a = draft.into_record(id, at, by.clone(), stamp);
            // Walk the visit forward, never past now.
            let mut t = at;
            let mut path =
                vec![(VisitStep::Registered, 3..20), (VisitStep::WithDoctor, 10..70), (VisitStep::Paying, 8..30)];
            if rng.random_bool(0.5) {
                path.push((VisitStep::Exams, 10..40));
            }
            if rng.random_bool(0.2) {
                path.push((VisitStep::Treatment, 20..90));
            }
            let end = weighted(
                rng,
                &[(VisitStep::Done, 92), (VisitStep::Admitted, 5), (VisitStep::Cancelled, 2), (VisitStep::Left, 1)],
            );
            if end == VisitStep::Cancelled {
                path.truncate(1);
            }
            path.push((end, 5..40));
            for (step, mins) in path {
                t = t.plus_millis(i64::from(rng.random_range(mins)) * 60_000);
                if t > self.now {
                    break;
                }
                let reason = step.needs_reason().then(|| (*pick(rng, CANCEL_REASONS)).to_string());
                let stamp = ctx.stamp();
                a.move_to(step, t, by.clone(), reason.as_deref(), stamp)?;
                // About one registration in 40 is changed (换号) right after it, with its reason; chosen from the
                // id's random bits so the random stream, and so every other record, stays as it was.
                let bits = (a.id.as_u128() >> 16) & 0xffff;
                if step == VisitStep::Registered && bits % 40 == 0 {
                    let to = &self.refs.departments[(bits as usize / 40) % self.refs.departments.len()].id;
                    if *to != a.department.value && t.0 + 60_000 <= self.now.0 {
                        let reason = CHANGE_REASONS[(bits as usize / 7) % CHANGE_REASONS.len()];
                        let stamp = ctx.stamp();
                        a.change_department(self.refs, to, None, reason, Moment(t.0 + 60_000), by.clone(), stamp)?;
                    }
                }
            }
            ctx.put(&a)?;
            ids.push(a.id);
            report.arrivals += 1;
            // The desk's own rule (`command::calls::outpatient_plan`); the demo makes its ids from the seed.
            if let Some(p) = crate::command::calls::outpatient_plan(&self.refs.followup_policy, &a, self.day) {
                self.task(ctx, rng, at, p.source, &p.patient_name, p.phone, p.department, false, p.window)?;
                report.followup_tasks += 1;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn task(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        at: Moment,
        source: FollowupSource,
        name: &str,
        phone: String,
        department: Option<String>,
        inpatient: bool,
        (due_from, due_to): (NaiveDate, NaiveDate),
    ) -> Result<RecordId, StoreError> {
        let stamp = ctx.stamp();
        let t = FollowupTask {
            id: id_at(rng, at),
            created_at: at,
            created_by: StaffRef(pick(rng, self.cs).clone()),
            source,
            patient_name: name.to_string(),
            phone,
            department,
            inpatient,
            due_from,
            due_to,
            status: Lww::new(FollowupStatus::Open, stamp),
            closed_at: Lww::new(None, stamp),
        };
        ctx.put(&t)?;
        Ok(t.id)
    }

    fn consultations(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        n: u32,
        at_time: &dyn Fn(u32, u32) -> Moment,
        arrivals: &[RecordId],
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        for _ in 0..n {
            let at = at_time(0, rng.random_range(480..1050));
            if at > self.now {
                continue;
            }
            let dept = pick(rng, &self.refs.departments).id.clone();
            let appointment = rng.random_bool(0.3);
            let form = ConsultationForm {
                channel: Some(weighted(
                    rng,
                    &[
                        (ConsultationChannel::Phone, 45),
                        (ConsultationChannel::WeChat, 25),
                        (ConsultationChannel::Web, 10),
                        (ConsultationChannel::Qq, 3),
                        (ConsultationChannel::InPerson, 17),
                    ],
                )),
                name: if rng.random_bool(0.7) { name(rng) } else { String::new() },
                sex: Some(if rng.random_bool(0.5) { Sex::Female } else { Sex::Male }),
                age: rng.random_range(18..85).to_string(),
                phone: if appointment || rng.random_bool(0.5) { mobile(rng) } else { String::new() },
                address: (*pick(rng, PLACES)).to_string(),
                disease_course: (*pick(rng, DURATIONS)).to_string(),
                question: (*pick(rng, QUESTIONS)).to_string(),
                answer: "已告知相关科室及出诊时间".into(),
                concerns: vec![weighted(
                    rng,
                    &[
                        (Concern::HealthAdvice, 40),
                        (Concern::Appointment, 30),
                        (Concern::PriceComparison, 20),
                        (Concern::Other, 10),
                    ],
                )],
                referred_department: dept,
                appointment: if appointment {
                    (self.day + Days::new(rng.random_range(0..7))).to_string()
                } else {
                    String::new()
                },
                ..ConsultationForm::default()
            };
            let id = id_at(rng, at);
            let stamp = ctx.stamp();
            let mut c = form.into_record(self.refs, id, at, StaffRef(pick(rng, self.guides).clone()), stamp)?;
            if appointment && !arrivals.is_empty() && rng.random_bool(0.45) {
                let stamp = ctx.stamp();
                c.arrival.set(Some(*pick(rng, arrivals)), stamp);
            }
            ctx.put(&c)?;
            report.consultations += 1;
        }
        Ok(())
    }

    fn feedback(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        n: u32,
        at_time: &dyn Fn(u32, u32) -> Moment,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        let mut times: Vec<Moment> =
            (0..n).map(|_| at_time(0, rng.random_range(510..1080))).filter(|m| *m <= self.now).collect();
        times.sort();
        let scale = [
            (Rating::VerySatisfied, 600),
            (Rating::Satisfied, 330),
            (Rating::Neutral, 40),
            (Rating::Dissatisfied, 18),
            (Rating::VeryDissatisfied, 6),
            (Rating::DontKnow, 6),
        ];
        for at in times {
            let complete = rng.random_bool(0.94);
            let overall = weighted(rng, &scale);
            let mut ratings = Vec::new();
            for d in Dimension::ALL {
                if rng.random_bool(if complete { 0.7 } else { 0.2 }) {
                    ratings.push((d, weighted(rng, &scale)));
                }
            }
            let wants_contact = overall.is_negative() && rng.random_bool(0.6);
            let form = FeedbackForm {
                survey_version: self.refs.survey.version,
                overall: Some(overall),
                ratings,
                reasons: if rng.random_bool(0.4) {
                    vec![pick(rng, &self.refs.survey.reasons).0.clone()]
                } else {
                    vec![]
                },
                comment: if overall.is_negative() && rng.random_bool(0.5) {
                    "希望改进排队叫号".into()
                } else {
                    String::new()
                },
                contact_phone: if wants_contact { mobile(rng) } else { String::new() },
                complete,
            };
            let fb = ctx.append_feedback(form.into_record(id_at(rng, at), at)?)?;
            report.feedback += 1;
            if let Some(phone) = fb.contact_phone.clone()
                && fb.is_dissatisfied()
            {
                self.task(
                    ctx,
                    rng,
                    at,
                    FollowupSource::Feedback { feedback: fb.id },
                    "",
                    phone,
                    None,
                    false,
                    (self.day, self.day),
                )?;
                report.followup_tasks += 1;
            }
        }
        Ok(())
    }

    fn cases(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        n: u32,
        at_time: &dyn Fn(u32, u32) -> Moment,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        for _ in 0..n {
            let at = at_time(0, rng.random_range(500..1050));
            if at > self.now {
                continue;
            }
            let grade = weighted(
                rng,
                &[
                    (CaseGrade::Feedback, 20),
                    (CaseGrade::Suggestion, 20),
                    (CaseGrade::Dissatisfied, 30),
                    (CaseGrade::VeryDissatisfied, 5),
                    (CaseGrade::Complaint, 20),
                    (CaseGrade::Dispute, 4),
                    (CaseGrade::Incident, 1),
                ],
            );
            let mut departments = vec![pick(rng, &self.refs.departments).id.clone()];
            if rng.random_bool(0.1) {
                departments.push(pick(rng, &self.refs.departments).id.clone());
            }
            let receiver = StaffRef(pick(rng, self.cs).clone());
            let form = CaseForm {
                grade: Some(grade),
                channel: Some(weighted(
                    rng,
                    &[
                        (CaseChannel::InPerson, 40),
                        (CaseChannel::Phone, 40),
                        (CaseChannel::Letter, 5),
                        (CaseChannel::Online, 15),
                    ],
                )),
                complainant: name(rng),
                complainant_phone: mobile(rng),
                relation: (*pick(rng, RELATIONS)).to_string(),
                departments: departments.clone(),
                facts: (*pick(rng, CASE_FACTS)).to_string(),
                request: "希望医院给予解释并改进".into(),
                ..CaseForm::default()
            };
            let due = policy::case_due(&self.refs.calendar, &self.refs.case_policy, grade, departments.len(), self.day);
            let stamp = ctx.stamp();
            let id = id_at(rng, at);
            // About one dissatisfied/complaint case in sixteen names a guide (accountability figures); chosen from
            // the id's random bits so the random stream, and so every other record, stays as it was.
            let pick_bits = id.as_u128() & 0xffff;
            let mut form = form;
            if matches!(grade, CaseGrade::Dissatisfied | CaseGrade::VeryDissatisfied | CaseGrade::Complaint)
                && pick_bits.is_multiple_of(16)
                && let Some(guide) = self.guides.get((pick_bits / 16) as usize % self.guides.len().max(1))
                && *guide != receiver.0
            {
                form.staff_concerned = vec![guide.clone()];
            }
            let origin = model::case::CaseOrigin { id, at, by: receiver.clone(), due, stamp };
            let mut c = form.into_record(self.refs, origin)?;
            // Progress older cases; some stay open (and some of those go overdue).
            let age_days = (self.now.local_date(self.offset) - self.day).num_days();
            // Older cases are mostly closed; a few are still being worked (and some of those are overdue).
            let progress = if age_days > 10 {
                if rng.random_bool(0.92) { 5 } else { rng.random_range(2..=4) }
            } else {
                rng.random_range(0..=age_days.clamp(0, 6) as u32)
            };
            // Grades 1–3 are handled on the spot (《客户服务中心管理方案》): most are closed the same day, minutes
            // apart; the rest of the work is done in working hours, a few hours to a day a step.
            let same_day = grade.handled_on_the_spot() && rng.random_bool(0.9);
            let progress = if same_day { 5 } else { progress };
            let mut t = at;
            let dept = departments[0].clone();
            let steps: [(CaseStatus, CaseEventKind); 6] = [
                (CaseStatus::Assigned, CaseEventKind::Assigned { department: dept.clone(), assignee: None }),
                (CaseStatus::Investigating, CaseEventKind::Investigating),
                (
                    CaseStatus::Resolved,
                    CaseEventKind::Resolved {
                        resolution: "已与科室核实并向患者致歉".into(),
                        actions: "科室内部通报，加强服务培训".into(),
                        responsible: self.refs.department(&dept).map_or_else(|| dept.clone(), |d| d.name.clone()),
                    },
                ),
                (CaseStatus::Notified, CaseEventKind::Notified),
                (
                    CaseStatus::Closed,
                    CaseEventKind::Closed {
                        satisfaction: Some(weighted(
                            rng,
                            &[(Rating::Satisfied, 80), (Rating::VerySatisfied, 15), (Rating::Dissatisfied, 5)],
                        )),
                    },
                ),
                (CaseStatus::Closed, CaseEventKind::Note),
            ];
            for (status, kind) in steps.into_iter().take(progress as usize).filter(|(_, k)| *k != CaseEventKind::Note) {
                t = if same_day {
                    t.plus_millis(rng.random_range(5..20) * 60_000)
                } else {
                    self.working_hours(t.plus_millis(rng.random_range(30..600) * 60_000), rng)
                };
                if t > self.now {
                    break;
                }
                let stamp = ctx.stamp();
                if let CaseEventKind::Closed { satisfaction } = &kind {
                    c.handling_satisfaction.set(*satisfaction, stamp);
                    c.closed_at.set(Some(t), stamp);
                }
                if let CaseEventKind::Assigned { department, .. } = &kind {
                    c.assigned_department.set(Some(department.clone()), stamp);
                }
                // A case closed after its deadline carries the reason, as the desk requires.
                let late = status == CaseStatus::Closed && t.local_date(self.offset) > c.due.value.0;
                let note = late.then(|| (*pick(rng, LATE_REASONS)).to_string());
                match kind {
                    // 批转: the receiver proposes the department, the supervisor approves the transfer.
                    CaseEventKind::Assigned { department, assignee }
                        if self.refs.case_policy.approval_grades.contains(&grade) =>
                    {
                        let proposed = CaseEventKind::Proposed { department: department.clone(), assignee: None };
                        let at = Moment(t.0 - 20 * 60_000);
                        c.events.push(model::CaseEvent { at, by: receiver.clone(), kind: proposed, note: None, stamp });
                        let approved = CaseEventKind::Approved { department, assignee };
                        c.advance(status, approved, note, t, StaffRef(self.leader.to_string()), ctx.stamp())?;
                    }
                    kind => c.advance(status, kind, note, t, receiver.clone(), stamp)?,
                }
            }
            self.improvement(ctx, &mut c, (pick_bits, id.as_u128() >> 16), &dept);
            ctx.put(&c)?;
            report.cases += 1;
        }
        Ok(())
    }

    /// About a third of the complaints (不满意 and up) that were resolved get an improvement measure from the
    /// department, due a month after the resolution; most are carried out by then, some late, a few never.
    /// Chosen from the case id's bits, so the random stream (and every other record) stays as it was.
    fn improvement(&self, ctx: &mut WriteCtx<'_>, c: &mut model::Case, (low, high): (u128, u128), dept: &str) {
        let resolved = c.events.iter().find(|e| matches!(e.kind, CaseEventKind::Resolved { .. })).map(|e| e.at);
        let Some(resolved) = resolved.filter(|_| c.grade.value.is_complaint() && low % 3 == 0) else { return };
        let at = Moment(resolved.0 + 60 * 60_000);
        let due = at.local_date(self.offset) + chrono::Days::new(30);
        let measure = IMPROVEMENTS[(high % IMPROVEMENTS.len() as u128) as usize].to_string();
        let plan = ctx.stamp();
        let by = c.assignee.value.clone().map_or_else(|| c.received_by.clone(), StaffRef);
        let kind = CaseEventKind::ImprovementPlanned { department: dept.to_string(), measure, due };
        c.events.push(model::CaseEvent { at, by: by.clone(), kind, note: None, stamp: plan });
        // Done 10–39 days later: most within the month, a few after it; one in ten is never reported done.
        let done = Moment(at.0 + i64::try_from(10 + (high >> 8) % 30).unwrap_or(10) * 86_400_000);
        if done <= self.now && (high >> 16) % 10 != 0 {
            let kind = CaseEventKind::ImprovementDone { plan, effect: "已落实，同类投诉减少".into() };
            c.events.push(model::CaseEvent { at: done, by, kind, note: None, stamp: ctx.stamp() });
        }
    }

    /// `t`, or the start of the next working day (08:00–08:59) when `t` falls outside 08:00–17:30 local time:
    /// staff work a case in working hours.
    fn working_hours(&self, t: Moment, rng: &mut ChaCha8Rng) -> Moment {
        let local = t.local(self.offset);
        let minutes = chrono::Timelike::hour(&local) * 60 + chrono::Timelike::minute(&local);
        if (8 * 60..17 * 60 + 30).contains(&minutes) {
            return t;
        }
        let day = if minutes < 8 * 60 { local.date_naive() } else { local.date_naive() + chrono::Days::new(1) };
        Moment::start_of_day(day, self.offset).plus_millis(i64::from(8 * 60 + rng.random_range(0..60u32)) * 60_000)
    }

    fn discharges(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        n: u32,
        at_time: &dyn Fn(u32, u32) -> Moment,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        let inpatient: Vec<_> = self.refs.departments.iter().filter(|d| d.inpatient).collect();
        if inpatient.is_empty() {
            return Ok(());
        }
        let at = at_time(7, 45).min(self.now);
        for i in 0..n {
            let dept = pick(rng, &inpatient);
            let key = format!("ZY{}{:04}", self.day.format("%Y%m%d"), i);
            let window = policy::discharge_window(&self.refs.followup_policy, &dept.id, self.day);
            // A third of the medical wards' discharges are chronic patients (the chronic plan's diagnoses).
            let chronic = match dept.id.as_str() {
                "cardio" => Some("高血压病 3 级"),
                "internal" => Some("2 型糖尿病"),
                "resp" => Some("慢性阻塞性肺疾病急性加重"),
                "neuro" => Some("脑梗死恢复期"),
                _ => None,
            }
            .filter(|_| i % 3 == 0);
            let source = FollowupSource::Discharge {
                his_key: key,
                discharged_on: self.day,
                diagnosis: chronic.map(str::to_string).or_else(|| dept.symptoms.first().cloned()),
            };
            let (patient, phone) = (name(rng), mobile(rng));
            let his_key = match &source {
                FollowupSource::Discharge { his_key, .. } => his_key.clone(),
                _ => String::new(),
            };
            let (his_key2, phone2) = (his_key.clone(), phone.clone());
            let first =
                self.task(ctx, rng, at, source, &patient, phone.clone(), Some(dept.id.clone()), true, window)?;
            report.followup_tasks += 1;
            // The second call (the policy's 7–15 days), made with the first; its id is derived from the first's so
            // the random stream, and every other record, stays as it was.
            if let Some(second) = policy::discharge_second_window(&self.refs.followup_policy, &dept.id, self.day) {
                let stamp = ctx.stamp();
                ctx.put(&FollowupTask {
                    id: RecordId::derived("demo discharge second call", first),
                    created_at: at,
                    created_by: StaffRef(self.cs.first().cloned().unwrap_or_default()),
                    source: FollowupSource::DischargeSecond { his_key, discharged_on: self.day },
                    patient_name: patient.clone(),
                    phone,
                    department: Some(dept.id.clone()),
                    inpatient: true,
                    due_from: second.0,
                    due_to: second.1,
                    status: Lww::new(FollowupStatus::Open, stamp),
                    closed_at: Lww::new(None, stamp),
                })?;
                report.followup_tasks += 1;
            }
            if let Some(plan) =
                self.refs.followup_policy.chronic.as_ref().filter(|p| chronic.is_some_and(|g| p.matches(g)))
            {
                let (from, to) = policy::chronic_first_window(plan, self.day, self.day);
                let stamp = ctx.stamp();
                ctx.put(&FollowupTask {
                    id: RecordId::derived(crate::command::calls::CHRONIC_FIRST, first),
                    created_at: at,
                    created_by: StaffRef(self.cs.first().cloned().unwrap_or_default()),
                    source: FollowupSource::Chronic { his_key: his_key2, discharged_on: self.day, round: 1 },
                    patient_name: patient.clone(),
                    phone: phone2,
                    department: Some(dept.id.clone()),
                    inpatient: true,
                    due_from: from,
                    due_to: to,
                    status: Lww::new(FollowupStatus::Open, stamp),
                    closed_at: Lww::new(None, stamp),
                })?;
                report.followup_tasks += 1;
            }
        }
        Ok(())
    }

    /// A claim (or release) of a task by `by` at `at`.
    #[allow(clippy::too_many_arguments)]
    fn claim(
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        task: crate::model::RecordId,
        at: Moment,
        by: &StaffRef,
        released: bool,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        let stamp = ctx.stamp();
        ctx.put(&crate::model::CallClaim { id: id_at(rng, at), task, at, stamp, by: by.clone(), released })?;
        report.call_claims += 1;
        Ok(())
    }

    /// Calls tasks whose window has started by this day, during calling hours.
    fn calls(
        &self,
        ctx: &mut WriteCtx<'_>,
        rng: &mut ChaCha8Rng,
        at_time: &dyn Fn(u32, u32) -> Moment,
        report: &mut DemoReport,
    ) -> Result<(), StoreError> {
        // Open tasks whose window has started (this transaction's own tasks included).
        let due = ctx.open_followup_ids_due(self.day)?;
        for id in due {
            let Some(mut task) = ctx.get::<FollowupTask>(id)? else { continue };
            if task.status.value.is_final() || rng.random_bool(0.25) {
                continue;
            }
            let at = at_time(if rng.random_bool(0.5) { 8 } else { 14 }, rng.random_range(0..170));
            if at > self.now {
                continue;
            }
            let outcome = weighted(
                rng,
                &[
                    (CallOutcome::Reached, 78),
                    (CallOutcome::NoAnswer, 12),
                    (CallOutcome::Busy, 5),
                    (CallOutcome::WrongNumber, 2),
                    (CallOutcome::Refused, 2),
                    (CallOutcome::Deceased, 1),
                ],
            );
            let reached = outcome == CallOutcome::Reached;
            let worrying = reached && rng.random_bool(0.02);
            let form = CallAttemptForm {
                outcome: Some(outcome),
                recovery: if reached { "恢复良好".into() } else { String::new() },
                medication: if reached { "按时服药".into() } else { String::new() },
                guidance_given: reached,
                revisit_reminder: reached,
                satisfaction: reached.then(|| {
                    weighted(
                        rng,
                        &[
                            (Rating::VerySatisfied, 55),
                            (Rating::Satisfied, 40),
                            (Rating::Neutral, 3),
                            (Rating::Dissatisfied, 2),
                        ],
                    )
                }),
                worrying,
                notes: if worrying { (*pick(rng, WORRYING)).to_string() } else { String::new() },
                ..CallAttemptForm::default()
            };
            let by = StaffRef(pick(rng, self.cs).clone());
            // The last day's calls show who opened the task first (the shared worklist's claims); now and then a
            // caller opened a task and let go of it before someone else called.
            if at.0 > self.now.0 - 86_400_000 {
                let opened = Moment(at.0 - i64::from(rng.random_range(1..5u32)) * 60_000);
                if rng.random_bool(0.1) {
                    let other = StaffRef(pick(rng, self.cs).clone());
                    let gave_up = Moment(opened.0 - 120_000);
                    Self::claim(ctx, rng, task.id, Moment(gave_up.0 - 60_000), &other, false, report)?;
                    Self::claim(ctx, rng, task.id, gave_up, &other, true, report)?;
                }
                Self::claim(ctx, rng, task.id, opened, &by, false, report)?;
            }
            let attempt = form.into_record(id_at(rng, at), task.id, at, by)?;
            ctx.put(&attempt)?;
            report.call_attempts += 1;
            // The same rule as at the desk (`command::calls::record_attempt`).
            let attempts = ctx.attempts_of(task.id)?;
            let status = task.status_after(outcome, attempts, self.day, self.refs.followup_policy.max_attempts);
            if let Some(s) = status {
                let stamp = ctx.stamp();
                task.status.set(s, stamp);
                task.closed_at.set(Some(at), stamp);
                ctx.put(&task)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
