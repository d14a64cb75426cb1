//! The audit log: who viewed, revealed, changed, exported or printed which record, and who signed in or was
//! refused.
//!
//! Entries are append-only and hash-chained per kiosk exactly like feedback ([`super::Chained`]): each entry commits
//! to the previous entry's hash, so a deleted, altered or spliced entry is detectable by `guidedesk check` on the
//! kiosk and from the copy HQ holds. An entry names its actor, its action, the record it concerns (kind and id) and a
//! short detail written by the software itself (a command name, a period, a row count) — never a name, phone or
//! free text a user typed, so the log itself holds no personal data beyond staff ids.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::common::{Merge, Moment, RecordId, RecordKind, StaffRef};

/// The longest detail kept (characters); longer details are cut.
pub const DETAIL_MAX: usize = 200;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuditAction {
    /// A record's details were opened, or a search was run.
    View,
    /// A masked phone number was shown in full.
    Reveal,
    /// A record was created or changed.
    Change,
    /// Records left the desk as a file (CSV/JSON export, report, audit export).
    Export,
    /// A document was printed (a complainant's acknowledgement slip).
    Print,
    /// A staff member signed in.
    SignIn,
    /// A sign-in was refused (wrong PIN, locked out).
    SignInFailed,
    /// A staff member signed out or the session locked.
    SignOut,
    /// A command was refused by the permission matrix.
    Refused,
    /// An alert was put before a supervisor (the registration queue over its limit).
    Alert,
}

impl AuditAction {
    /// Every action, in display order.
    pub const ALL: [AuditAction; 10] = [
        AuditAction::View,
        AuditAction::Reveal,
        AuditAction::Change,
        AuditAction::Export,
        AuditAction::Print,
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignOut,
        AuditAction::Refused,
        AuditAction::Alert,
    ];

    /// The stable key (exports, locale files, CLI).
    pub fn key(self) -> &'static str {
        match self {
            AuditAction::View => "view",
            AuditAction::Reveal => "reveal",
            AuditAction::Change => "change",
            AuditAction::Export => "export",
            AuditAction::Print => "print",
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::SignOut => "sign_out",
            AuditAction::Refused => "refused",
            AuditAction::Alert => "alert",
        }
    }

    /// The action for a stable key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.key() == key)
    }
}

/// The record an entry concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditTarget {
    /// Its kind.
    pub kind: RecordKind,
    /// Its id.
    pub id: RecordId,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// UUIDv7 id.
    pub id: RecordId,
    /// When it happened (kiosk clock).
    pub at: Moment,
    /// Who did it: a staff id, `cli:<os user>` for the command line, or the id typed at a refused sign-in.
    pub actor: StaffRef,
    /// What was done.
    pub action: AuditAction,
    /// The record concerned, if one.
    pub target: Option<AuditTarget>,
    /// A short detail written by the software (command, period, count); never personal data.
    pub detail: String,
    /// Position in this kiosk's audit chain (0-based, gap-free).
    pub chain_index: u64,
    /// Hash of the previous entry (zeros for the first).
    pub prev_hash: [u8; 32],
    /// Hash of this entry's content and `prev_hash`.
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// An unsealed entry; the store places it in the chain when it appends it.
    pub fn new(
        id: RecordId,
        at: Moment,
        actor: StaffRef,
        action: AuditAction,
        target: Option<AuditTarget>,
        detail: &str,
    ) -> Self {
        let detail: String = detail.chars().filter(|c| !c.is_control()).take(DETAIL_MAX).collect();
        AuditEntry { id, at, actor, action, target, detail, chain_index: 0, prev_hash: [0; 32], hash: [0; 32] }
    }

    /// Computes the chain hash over every content field, the chain index and the previous hash.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"guidedesk-audit-v1");
        h.update(self.id.0.as_bytes());
        h.update(self.at.0.to_le_bytes());
        for s in [self.actor.0.as_str(), self.action.key(), self.detail.as_str()] {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        match &self.target {
            Some(t) => {
                h.update([1]);
                h.update(t.kind.code().to_le_bytes());
                h.update(t.id.0.as_bytes());
            }
            None => h.update([0]),
        }
        h.update(self.chain_index.to_le_bytes());
        h.update(self.prev_hash);
        h.finalize().into()
    }
}

impl Merge for AuditEntry {
    /// Entries never change after they are written; copies are identical.
    fn merge(&mut self, _other: &Self) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Chained;

    fn entry() -> AuditEntry {
        let target = Some(AuditTarget { kind: RecordKind::Case, id: RecordId::new_v7(Moment(5)) });
        AuditEntry::new(
            RecordId::new_v7(Moment(9)),
            Moment(9),
            StaffRef("g01".into()),
            AuditAction::Reveal,
            target,
            "x",
        )
    }

    type Mutation = Box<dyn Fn(&mut AuditEntry)>;

    #[test]
    fn hash_covers_every_field() {
        let mut e = entry();
        e.seal(0, [0; 32]);
        let base = e.hash;
        let changes: Vec<Mutation> = vec![
            Box::new(|x| x.id = RecordId::new_v7(Moment(1))),
            Box::new(|x| x.at = Moment(10)),
            Box::new(|x| x.actor = StaffRef("g02".into())),
            Box::new(|x| x.action = AuditAction::View),
            Box::new(|x| x.target = None),
            Box::new(|x| x.target.as_mut().unwrap().kind = RecordKind::Arrival),
            Box::new(|x| x.detail = "y".into()),
            Box::new(|x| x.chain_index = 1),
            Box::new(|x| x.prev_hash = [1; 32]),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut c = e.clone();
            change(&mut c);
            assert_ne!(c.compute_hash(), base, "mutation {i} not covered");
        }
    }

    #[test]
    fn detail_is_cut_and_loses_control_characters() {
        let view = |detail: &str| {
            AuditEntry::new(
                RecordId::new_v7(Moment(1)),
                Moment(1),
                StaffRef::default(),
                AuditAction::View,
                None,
                detail,
            )
        };
        assert_eq!(view(&"界".repeat(DETAIL_MAX + 50)).detail.chars().count(), DETAIL_MAX);
        let e = view("a\nb\u{7}");
        assert_eq!(e.detail, "ab");
    }

    #[test]
    fn action_keys_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_key(a.key()), Some(a));
        }
        assert_eq!(AuditAction::from_key("nope"), None);
    }
}
