//! What every staff screen gets for a frame ([`ScreenCtx`]) and how it hands commands back ([`ScreenCtx::send`],
//! [`ScreenCtx::request`]); the app builds one context per frame, drains its commands after the screen has drawn
//! and answers each sent command with a [`Reply`] through [`DeskScreen::on_outcome`].
//!
//! The patient screen is not a [`DeskScreen`]: it faces the public with no staff session behind it, reads nothing
//! through [`Queries`] (the survey is all it shows) and asks only to save a survey or to leave patient mode, which
//! the app handles outside the permission matrix. It keeps its own `ui(ui, survey) -> Option<PatientAction>`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate};
use egui::Ui;

use super::data::{Command, Outcome, Queries};
use super::i18n::Tr;
use crate::model::reference::Role;
use crate::model::{Moment, RecordId, ReferenceData};

/// Reads that may move to another thread (the dashboard computes its figures off the UI thread).
pub type SharedQueries = Arc<dyn Queries + Send + Sync>;

/// One frame's context for a staff screen.
pub struct ScreenCtx<'a> {
    /// Read-only access to the kiosk's records.
    pub q: &'a dyn Queries,
    /// The same reads for work done off the UI thread, when the caller can hand them over.
    pub background: Option<SharedQueries>,
    /// The screen language.
    pub tr: Tr,
    /// The role acting now (`None` while locked or signed out).
    pub role: Option<Role>,
    /// The person signed in (`None` while locked or signed out): screens tell "you" apart from other callers.
    pub me: Option<crate::model::StaffRef>,
    /// The department a department head works for (`None` for every other role): the cases screen shows only its
    /// cases.
    pub department: Option<String>,
    /// The last record another desk of the site changed that this desk took in: (kind, id, that desk). A screen
    /// showing that record says so, and keeps what is typed in its forms.
    pub last_remote: Option<(crate::model::RecordKind, RecordId, String)>,
    /// Whether a session is locked (the sign-in screen says so).
    pub locked: bool,
    /// Changes whenever the store changed; screens reload their lists only then.
    pub version: u64,
    /// The time of this frame.
    pub now: Moment,
    /// Today's local date.
    pub today: NaiveDate,
    /// The site's UTC offset.
    pub offset: FixedOffset,
    /// Reference data.
    pub refs: Arc<ReferenceData>,
    /// Whether the role may reveal masked phone numbers.
    pub may_reveal: bool,
    /// Records whose phone number was revealed (and audited) in this session.
    pub revealed: BTreeSet<RecordId>,
    sent: RefCell<Vec<Command>>,
    requests: RefCell<Vec<Command>>,
}

impl std::fmt::Debug for ScreenCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenCtx")
            .field("role", &self.role)
            .field("version", &self.version)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> ScreenCtx<'a> {
    /// A context reading through `q` now: nobody signed in, version 0, nothing revealed.
    pub fn new(q: &'a dyn Queries, tr: Tr) -> Self {
        Self {
            q,
            background: None,
            tr,
            role: None,
            me: None,
            department: None,
            last_remote: None,
            locked: false,
            version: 0,
            now: q.now(),
            today: q.today(),
            offset: q.offset(),
            refs: q.reference(),
            may_reveal: false,
            revealed: BTreeSet::new(),
            sent: RefCell::new(Vec::new()),
            requests: RefCell::new(Vec::new()),
        }
    }

    /// Asks the app to apply a command after this frame; its outcome comes back to the screen as a [`Reply`].
    pub fn send(&self, cmd: Command) {
        self.sent.borrow_mut().push(cmd);
    }

    /// Asks the app to put a view or a reveal on the audit log after this frame (with the same permission check as
    /// every command); a failure shows in the status bar, not on the screen.
    pub fn request(&self, cmd: Command) {
        self.requests.borrow_mut().push(cmd);
    }

    /// The commands sent and the requests made in this frame, in order.
    pub fn into_commands(self) -> (Vec<Command>, Vec<Command>) {
        (self.sent.into_inner(), self.requests.into_inner())
    }
}

/// What applying a sent command did, handed back to the screen that sent it.
#[derive(Debug)]
pub struct Reply<'a> {
    /// The command applied.
    pub sent: &'a Command,
    /// What applying it did.
    pub outcome: &'a Outcome,
    /// The app's message about a file it wrote (a slip, an export), if any.
    pub note: Option<String>,
    /// The screen language.
    pub tr: Tr,
}

/// A staff screen: draws itself from a [`ScreenCtx`] and sends commands through it.
pub trait DeskScreen {
    /// Draws the screen for one frame.
    fn ui(&mut self, ui: &mut Ui, cx: &ScreenCtx<'_>);

    /// Takes what applying one of its commands did (screens that send none keep the default).
    fn on_outcome(&mut self, reply: &Reply<'_>) {
        let _ = reply;
    }
}
