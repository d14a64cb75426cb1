//! Satisfaction feedback (满意度), given by patients on the kiosk's patient screen.
//!
//! Feedback is append-only and hash-chained per kiosk: each record commits to the previous record's hash, so a
//! deleted or altered record is detectable. The store assigns `chain_index`, `prev_hash` and `hash` when it appends.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::common::{Merge, Moment, RecordId};
use super::validate::{self, Problem, ValidationErrors, limits};

/// A labelled five-point rating plus "don't know".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// 非常满意
    VerySatisfied,
    /// 满意
    Satisfied,
    /// 一般
    Neutral,
    /// 不满意
    Dissatisfied,
    /// 非常不满意
    VeryDissatisfied,
    /// 不清楚/不适用
    DontKnow,
}

impl Rating {
    /// Every rating, in display order.
    pub const ALL: [Rating; 6] = [
        Rating::VerySatisfied,
        Rating::Satisfied,
        Rating::Neutral,
        Rating::Dissatisfied,
        Rating::VeryDissatisfied,
        Rating::DontKnow,
    ];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            Rating::VerySatisfied => "very_satisfied",
            Rating::Satisfied => "satisfied",
            Rating::Neutral => "neutral",
            Rating::Dissatisfied => "dissatisfied",
            Rating::VeryDissatisfied => "very_dissatisfied",
            Rating::DontKnow => "dont_know",
        }
    }

    /// Counts as satisfied.
    pub fn is_positive(self) -> bool {
        matches!(self, Rating::VerySatisfied | Rating::Satisfied)
    }

    /// Counts as dissatisfied.
    pub fn is_negative(self) -> bool {
        matches!(self, Rating::Dissatisfied | Rating::VeryDissatisfied)
    }

    /// Counts in a satisfaction denominator ("don't know" does not).
    pub fn is_scored(self) -> bool {
        self != Rating::DontKnow
    }
}

/// The rated aspects of a visit besides the overall question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// 挂号
    Registration,
    /// 导医服务
    Guide,
    /// 医生
    Doctor,
    /// 护士
    Nurse,
    /// 环境
    Environment,
    /// 等候时间
    Waiting,
    /// 药房
    Pharmacy,
    /// 收费
    Billing,
}

impl Dimension {
    /// Every dimension, in survey order.
    pub const ALL: [Dimension; 8] = [
        Dimension::Registration,
        Dimension::Guide,
        Dimension::Doctor,
        Dimension::Nurse,
        Dimension::Environment,
        Dimension::Waiting,
        Dimension::Pharmacy,
        Dimension::Billing,
    ];

    /// Stable key (matches survey question keys).
    pub fn key(self) -> &'static str {
        match self {
            Dimension::Registration => "registration",
            Dimension::Guide => "guide",
            Dimension::Doctor => "doctor",
            Dimension::Nurse => "nurse",
            Dimension::Environment => "environment",
            Dimension::Waiting => "waiting",
            Dimension::Pharmacy => "pharmacy",
            Dimension::Billing => "billing",
        }
    }

    /// The dimension for a key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.key() == key)
    }
}

/// A feedback record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When it was given (or abandoned).
    pub at: Moment,
    /// The survey version answered.
    pub survey_version: u32,
    /// The overall rating.
    pub overall: Rating,
    /// Optional per-dimension ratings, in survey order.
    pub ratings: Vec<(Dimension, Rating)>,
    /// Preset reasons tapped.
    pub reasons: Vec<String>,
    /// Free comment.
    pub comment: Option<String>,
    /// Phone for a call back, if the patient asked to be contacted.
    pub contact_phone: Option<String>,
    /// False when the patient walked away before finishing (saved by timeout).
    pub complete: bool,
    /// Position in this kiosk's feedback chain (0-based, gap-free).
    pub chain_index: u64,
    /// Hash of the previous record in the chain (zeros for the first).
    pub prev_hash: [u8; 32],
    /// Hash of this record's content and `prev_hash`.
    pub hash: [u8; 32],
}

impl Feedback {
    /// Whether the answer is dissatisfied overall or in any dimension.
    pub fn is_dissatisfied(&self) -> bool {
        self.overall.is_negative() || self.ratings.iter().any(|(_, r)| r.is_negative())
    }

    /// The rating of a dimension, if given.
    pub fn rating(&self, d: Dimension) -> Option<Rating> {
        self.ratings.iter().find(|(k, _)| *k == d).map(|(_, r)| *r)
    }

    /// Computes the chain hash over every content field, the chain index and the previous hash.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"guidedesk-feedback-v1");
        h.update(self.id.0.as_bytes());
        h.update(self.at.0.to_le_bytes());
        h.update(self.survey_version.to_le_bytes());
        h.update(self.overall.key());
        for (d, r) in &self.ratings {
            h.update([0x1f]);
            h.update(d.key());
            h.update([0x1e]);
            h.update(r.key());
        }
        for reason in &self.reasons {
            h.update([0x1d]);
            h.update((reason.len() as u64).to_le_bytes());
            h.update(reason.as_bytes());
        }
        for opt in [&self.comment, &self.contact_phone] {
            match opt {
                Some(s) => {
                    h.update([1]);
                    h.update((s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
                None => h.update([0]),
            }
        }
        h.update([u8::from(self.complete)]);
        h.update(self.chain_index.to_le_bytes());
        h.update(self.prev_hash);
        h.finalize().into()
    }
}

impl Merge for Feedback {
    /// Feedback never changes after it is written; copies are identical.
    fn merge(&mut self, _other: &Self) {}
}

/// A survey as answered so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedbackForm {
    /// Survey version.
    pub survey_version: u32,
    /// Overall rating, once given.
    pub overall: Option<Rating>,
    /// Dimension ratings given.
    pub ratings: Vec<(Dimension, Rating)>,
    /// Reasons tapped.
    pub reasons: Vec<String>,
    /// Comment.
    pub comment: String,
    /// Contact phone as entered.
    pub contact_phone: String,
    /// Whether the patient reached the end.
    pub complete: bool,
}

impl FeedbackForm {
    /// Validates the answers and makes an (unsealed) record.
    pub fn into_record(&self, id: RecordId, at: Moment) -> Result<Feedback, ValidationErrors> {
        let mut e = ValidationErrors::default();
        if self.overall.is_none() {
            e.push("overall", Problem::Required);
        }
        let mut seen = std::collections::BTreeSet::new();
        if self.ratings.iter().any(|(d, _)| !seen.insert(*d)) {
            e.push("ratings", Problem::Conflict("a dimension is rated twice"));
        }
        if self.reasons.len() > 20 || self.reasons.iter().any(|r| r.chars().count() > limits::SHORT) {
            e.push("reasons", Problem::TooLong { max: limits::SHORT });
        }
        let comment = validate::opt_text(&mut e, "comment", &self.comment, limits::LONG);
        let contact_phone = validate::opt_phone(&mut e, "contact_phone", &self.contact_phone);
        e.into_result(|| Feedback {
            id,
            at,
            survey_version: self.survey_version,
            overall: self.overall.unwrap_or(Rating::DontKnow),
            ratings: self.ratings.clone(),
            reasons: self.reasons.clone(),
            comment,
            contact_phone,
            complete: self.complete,
            chain_index: 0,
            prev_hash: [0; 32],
            hash: [0; 32],
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Chained;

    type Mutation = Box<dyn Fn(&mut Feedback)>;

    #[test]
    fn hash_covers_every_field() {
        let f = FeedbackForm {
            survey_version: 1,
            overall: Some(Rating::Dissatisfied),
            ratings: vec![(Dimension::Waiting, Rating::VeryDissatisfied)],
            reasons: vec!["等候时间长".into()],
            comment: "排队太久".into(),
            contact_phone: "13800138000".into(),
            complete: true,
        };
        let mut r = f.into_record(RecordId::new_v7(Moment(5)), Moment(5)).unwrap();
        r.seal(0, [0; 32]);
        assert!(r.is_dissatisfied());
        let base = r.hash;
        let variants: Vec<Mutation> = vec![
            Box::new(|x| x.overall = Rating::Satisfied),
            Box::new(|x| x.ratings.clear()),
            Box::new(|x| x.reasons.push("x".into())),
            Box::new(|x| x.comment = None),
            Box::new(|x| x.contact_phone = None),
            Box::new(|x| x.complete = false),
            Box::new(|x| x.at = Moment(6)),
            Box::new(|x| x.chain_index = 1),
            Box::new(|x| x.prev_hash = [1; 32]),
        ];
        for v in variants {
            let mut c = r.clone();
            v(&mut c);
            assert_ne!(c.compute_hash(), base);
        }
    }

    #[test]
    fn overall_is_required_and_phone_checked() {
        let f = FeedbackForm { contact_phone: "12".into(), ..FeedbackForm::default() };
        let e = f.into_record(RecordId::new_v7(Moment(5)), Moment(5)).unwrap_err();
        assert_eq!(e.get("overall"), Some(&Problem::Required));
        assert_eq!(e.get("contact_phone"), Some(&Problem::InvalidPhone));
    }
}
