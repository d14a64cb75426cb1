//! The eframe application: wires the store to the screens, applies their commands, keeps the session, locks idle
//! screens, and shows the status bar.

use std::sync::Arc;

use anyhow::Result;
use egui::{RichText, Ui};

use crate::command::{Command, Outcome, SearchHit, run_search};
use crate::config::{Config, Language};
use crate::model::reference::{Role, Staff};
use crate::model::{AuditAction, AuditTarget, Moment, RecordId, RecordKind, StaffRef};
use crate::store::{Stats, Store, StoreError, WriteCtx};
mod run;
mod session;

pub use run::{RunOptions, run, run_with};

use crate::ui::{
    DeskScreen, Reply, ScreenCtx, appointments::AppointmentsScreen, audit::AuditScreen, board::BoardScreen,
    cases::CasesScreen, consult::ConsultScreen, context::SharedQueries, dashboard::DashboardScreen, data::Queries,
    directory::DirectoryScreen, followup::FollowupScreen, i18n::Tr, job::Job, patient::PatientAction,
    patient::PatientScreen, register::RegisterScreen, search::SearchScreen, shiftlog::ShiftLogScreen,
    signin::SignInScreen, signin::role_key, theme,
};

/// The staff screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Register an arrival.
    Register,
    /// Today's visit board.
    Board,
    /// Consultations.
    Consult,
    /// Bookings.
    Appointments,
    /// The department directory.
    Directory,
    /// The shift log.
    ShiftLog,
    /// Search.
    Search,
    /// Complaints.
    Cases,
    /// Follow-up calls.
    Followup,
    /// KPIs and charts.
    Dashboard,
    /// The audit log (supervisors).
    Audit,
}

impl Screen {
    /// Every staff screen, in tab order.
    pub const ALL: [Screen; 11] = [
        Screen::Register,
        Screen::Board,
        Screen::Appointments,
        Screen::Consult,
        Screen::Directory,
        Screen::Cases,
        Screen::Followup,
        Screen::Dashboard,
        Screen::Search,
        Screen::ShiftLog,
        Screen::Audit,
    ];
}

/// Patient mode: the kiosk faces patients; no staff screen is reachable until a staff PIN is entered.
#[derive(Debug)]
struct PatientMode {
    screen: PatientScreen,
    started_by: Staff,
    last_input: Moment,
    thanks_until: Option<Moment>,
}

/// The lockout key of the patient-mode exit keypad (not a staff id: staff ids are letters, digits and '-').
const PATIENT_EXIT: &str = "patient mode exit";

/// How long the thank-you screen stays before the survey resets for the next person.
const THANKS_MS: i64 = 5_000;

/// The kiosk application state.
#[derive(Debug)]
pub struct DeskApp {
    store: Arc<Store>,
    tr: Tr,
    idle_lock_ms: i64,
    staff: Option<Staff>,
    locked: bool,
    last_activity: Moment,
    screen: Screen,
    signin: SignInScreen,
    register: RegisterScreen,
    board: BoardScreen,
    consult: ConsultScreen,
    appointments: AppointmentsScreen,
    directory: DirectoryScreen,
    shiftlog: ShiftLogScreen,
    search: SearchScreen,
    cases: CasesScreen,
    followup: FollowupScreen,
    dashboard: DashboardScreen,
    audit: AuditScreen,
    /// The supervisors' alert strip above every screen.
    alerts: crate::ui::alerts::AlertStrip,
    /// Records whose phone number was revealed (and audited) in this session; cleared when the session ends.
    revealed: std::collections::BTreeSet<RecordId>,
    search_job: Option<Job<Result<Vec<SearchHit>, String>>>,
    import_job: Option<Job<Result<crate::import::ImportReport, String>>>,
    version: u64,
    stats: Option<(u64, Stats)>,
    stats_at: Option<Moment>,
    last_error: Option<String>,
    patient: Option<PatientMode>,
    file_message: Option<String>,
    sync: Option<crate::kiosk_sync::SyncWorker>,
    /// Records other desks changed that the screens have been refreshed for.
    remote_seen: u64,
    /// The customer-service office's desk: no registration tab, no patient mode.
    office: bool,
}

impl DeskApp {
    /// An app over an open store.
    pub fn new(store: Arc<Store>, cfg: &Config) -> Self {
        let now = store.now();
        Self {
            store,
            tr: Tr::new(cfg.language),
            idle_lock_ms: i64::from(cfg.idle_lock_minutes) * 60_000,
            staff: None,
            locked: false,
            last_activity: now,
            screen: if cfg.kind == crate::config::DeskKind::Office { Screen::Cases } else { Screen::Register },
            signin: SignInScreen::default(),
            register: RegisterScreen::default(),
            board: BoardScreen::default(),
            consult: ConsultScreen::default(),
            appointments: AppointmentsScreen::default(),
            directory: DirectoryScreen::default(),
            shiftlog: ShiftLogScreen::default(),
            search: SearchScreen::default(),
            cases: CasesScreen::default(),
            alerts: crate::ui::alerts::AlertStrip::default(),
            followup: FollowupScreen::default(),
            dashboard: DashboardScreen::default(),
            audit: AuditScreen::default(),
            revealed: std::collections::BTreeSet::new(),
            search_job: None,
            import_job: None,
            version: 0,
            stats: None,
            stats_at: None,
            last_error: None,
            patient: None,
            file_message: None,
            sync: None,
            remote_seen: 0,
            office: cfg.kind == crate::config::DeskKind::Office,
        }
    }

    /// The signed-in staff member, if any.
    pub fn staff(&self) -> Option<&Staff> {
        self.staff.as_ref()
    }

    /// Whether the session is locked.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The registration form as typed.
    pub fn register_form(&self) -> &crate::model::ArrivalForm {
        self.register.form()
    }

    /// The bookings screen (tests fill its form as a guide would).
    pub fn appointments_mut(&mut self) -> &mut AppointmentsScreen {
        &mut self.appointments
    }

    /// The shift log screen (tests fill its form).
    pub fn shiftlog_mut(&mut self) -> &mut ShiftLogScreen {
        &mut self.shiftlog
    }

    /// The directory screen (tests type into its search).
    pub fn directory_mut(&mut self) -> &mut DirectoryScreen {
        &mut self.directory
    }

    /// The dashboard's figures, once computed (tests).
    pub fn dashboard_summary(&self) -> Option<&crate::reports::Summary> {
        self.dashboard.summary()
    }

    /// The current screen.
    pub fn screen(&self) -> Screen {
        self.screen
    }

    /// Attaches the background sync worker whose status the status bar shows.
    pub fn attach_sync(&mut self, worker: crate::kiosk_sync::SyncWorker) {
        self.sync = Some(worker);
    }

    /// The background sync worker, when one is attached.
    pub fn sync_worker(&self) -> Option<&crate::kiosk_sync::SyncWorker> {
        self.sync.as_ref()
    }

    /// Whether the kiosk is in patient mode.
    pub fn in_patient_mode(&self) -> bool {
        self.patient.is_some()
    }

    /// Switches the kiosk to the patient feedback screen (needs a signed-in staff member).
    pub fn enter_patient_mode(&mut self) {
        if !self.may(crate::access::Action::PatientMode) {
            return;
        }
        self.audit(AuditAction::SignOut, None, "patient mode");
        self.revealed.clear();
        if let Some(s) = self.staff.take() {
            self.patient = Some(PatientMode {
                screen: PatientScreen::new(self.tr.lang),
                started_by: s,
                last_input: self.store.now(),
                thanks_until: None,
            });
        }
    }

    /// The whole UI for one frame.
    pub fn show(&mut self, ui: &mut Ui) {
        if self.patient.is_some() {
            self.patient_ui(ui);
            return;
        }
        self.track_activity(ui);
        self.poll_jobs();
        self.take_remote_changes();
        // Input, a changed record (the sync thread asks) and finished jobs repaint at once; otherwise the next
        // frame is due when the clock's minute turns or the idle lock falls due, so an unattended kiosk draws
        // about once a minute.
        ui.ctx().request_repaint_after(self.next_tick());
        let tr = self.tr;
        self.top_bar(ui, tr);
        self.status_bar(ui, tr);
        egui::CentralPanel::default().show(ui, |ui| {
            let screen = if self.staff.is_none() || self.locked {
                None
            } else {
                if !self.may(screen_action(self.screen))
                    && let Some(first) = Screen::ALL.into_iter().find(|s| self.may(screen_action(*s)))
                {
                    self.screen = first;
                }
                Some(self.screen)
            };
            // The screen reads through a handle of its own, so the app stays free to apply what it sends.
            let reader: SharedQueries = Arc::clone(&self.store) as SharedQueries;
            let cx = self.screen_ctx(&*reader, &reader);
            if screen.is_some() && self.may(crate::access::Action::SupervisorAlerts) {
                match self.alerts.ui(ui, &cx) {
                    Some(crate::ui::alerts::Goto::Board) => self.screen = Screen::Board,
                    Some(crate::ui::alerts::Goto::Cases) => self.screen = Screen::Cases,
                    None => {}
                }
            }
            self.desk_screen(screen).ui(ui, &cx);
            let (sent, requests) = cx.into_commands();
            for cmd in sent {
                let outcome = self.apply(cmd.clone(), ui.ctx());
                let reply = Reply { sent: &cmd, outcome: &outcome, note: self.file_message.take(), tr };
                self.desk_screen(screen).on_outcome(&reply);
            }
            // Views and reveals the screens asked for in this frame, each audited before anything more is shown.
            for cmd in requests {
                if let Outcome::Failed(m) = self.apply(cmd, ui.ctx()) {
                    self.last_error = Some(m);
                }
            }
        });
    }

    /// This frame's context for the staff screens.
    fn screen_ctx<'a>(&self, q: &'a dyn Queries, shared: &SharedQueries) -> ScreenCtx<'a> {
        let mut cx = ScreenCtx::new(q, self.tr);
        cx.background = Some(Arc::clone(shared));
        cx.role = self.session_role();
        if cx.role.is_some() {
            cx.me = self.staff.as_ref().map(|s| StaffRef(s.id.clone()));
        }
        if cx.role == Some(Role::DepartmentHead) {
            cx.department = self.staff.as_ref().and_then(|s| s.department.clone());
        }
        cx.locked = self.locked;
        cx.version = self.version;
        cx.last_remote = self.sync.as_ref().and_then(|w| w.status().last_remote);
        cx.may_reveal = self.may(crate::access::Action::RevealPhone);
        cx.revealed.clone_from(&self.revealed);
        cx
    }

    /// The staff screen shown (`None`: the sign-in screen).
    fn desk_screen(&mut self, screen: Option<Screen>) -> &mut dyn DeskScreen {
        match screen {
            None => &mut self.signin,
            Some(Screen::Register) => &mut self.register,
            Some(Screen::Board) => &mut self.board,
            Some(Screen::Consult) => &mut self.consult,
            Some(Screen::Appointments) => &mut self.appointments,
            Some(Screen::Directory) => &mut self.directory,
            Some(Screen::ShiftLog) => &mut self.shiftlog,
            Some(Screen::Search) => &mut self.search,
            Some(Screen::Cases) => &mut self.cases,
            Some(Screen::Followup) => &mut self.followup,
            Some(Screen::Dashboard) => &mut self.dashboard,
            Some(Screen::Audit) => &mut self.audit,
        }
    }

    fn patient_ui(&mut self, ui: &mut Ui) {
        let now = self.store.now();
        let refs = self.store.reference();
        let survey = &refs.survey;
        let Some(p) = self.patient.as_mut() else { return };
        ui.ctx().request_repaint_after(std::time::Duration::from_secs(1));
        if ui.input(|i| !i.events.is_empty() || i.pointer.any_down()) {
            p.last_input = now;
        }
        if p.thanks_until.is_some_and(|t| now >= t) {
            p.thanks_until = None;
            p.screen.reset(self.tr.lang);
        }
        let timed_out = now.millis_since(p.last_input) >= i64::from(survey.timeout_secs) * 1000;
        if timed_out && p.screen.in_progress() {
            // Walked away mid-survey: keep what was answered, marked incomplete, and reset for the next person.
            let form = p.screen.abandoned();
            p.screen.reset(self.tr.lang);
            p.last_input = now;
            if let Outcome::Failed(m) = self.save_feedback(&form) {
                self.last_error = Some(m);
            }
        }
        let Some(p) = self.patient.as_mut() else { return };
        let action = egui::CentralPanel::default().show(ui, |ui| p.screen.ui(ui, survey)).inner;
        match action {
            Some(PatientAction::Submit(form)) => {
                if let Outcome::Done(_) = self.save_feedback(&form)
                    && let Some(p) = self.patient.as_mut()
                {
                    p.screen.thank();
                    p.thanks_until = Some(now.plus_millis(THANKS_MS));
                }
            }
            Some(PatientAction::Leave(pin)) => {
                // The exit keypad faces the public: wrong PINs back off like sign-in, counted for the whole kiosk.
                let lockout = self.store.signin_lockout(PATIENT_EXIT).unwrap_or_default();
                let Some(p) = self.patient.as_mut() else { return };
                let who = if lockout.locked_until(now).is_some() {
                    None
                } else if crate::staff::verify_pin(&p.started_by.pin_hash, &pin) {
                    Some(p.started_by.clone())
                } else {
                    // A supervisor or administrator can also release the kiosk.
                    self.store
                        .all_staff()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| s.active && s.role >= Role::Supervisor)
                        .find(|s| crate::staff::verify_pin(&s.pin_hash, &pin))
                };
                let counted = if who.is_some() {
                    if lockout.failures > 0 { self.store.clear_signin_failures(PATIENT_EXIT) } else { Ok(()) }
                } else if lockout.locked_until(now).is_none() && !pin.is_empty() {
                    self.store.record_signin_failure(PATIENT_EXIT, now).map(drop)
                } else {
                    Ok(())
                };
                if let Err(e) = counted {
                    self.last_error = Some(e.to_string());
                }
                if let Some(s) = who {
                    if s.id != p.started_by.id {
                        self.reset_screens();
                    }
                    self.patient = None;
                    self.staff = Some(s);
                    self.locked = false;
                    self.last_activity = now;
                    self.audit(AuditAction::SignIn, None, "patient mode exit");
                } else {
                    if !pin.is_empty() {
                        self.audit_as(&StaffRef(PATIENT_EXIT.into()), AuditAction::SignInFailed, None, "wrong PIN");
                    }
                    if let Some(p) = self.patient.as_mut() {
                        p.screen.exit_refused();
                    }
                }
            }
            None => {}
        }
    }

    /// Saves a survey: the feedback record on this kiosk's hash chain and, when the answer is dissatisfied and the
    /// patient left a phone number, a same-day call-back task, in the same transaction.
    fn save_feedback(&mut self, form: &crate::model::FeedbackForm) -> Outcome {
        let r = self.store.write(|ctx| crate::command::desk::save_feedback(ctx, form).map(Some));
        self.written(r)
    }

    fn track_activity(&mut self, ui: &Ui) {
        let now = self.store.now();
        let active = ui.input(|i| !i.events.is_empty() || i.pointer.is_moving() || i.pointer.any_down());
        if active {
            self.last_activity = now;
        } else if self.staff.is_some() && !self.locked && now.millis_since(self.last_activity) >= self.idle_lock_ms {
            self.lock();
        }
    }

    /// How long until a frame is needed with nothing happening: the clock's next minute, or the idle lock.
    fn next_tick(&self) -> std::time::Duration {
        let now = self.store.now();
        let mut ms = 60_000 - now.0.rem_euclid(60_000);
        if self.staff.is_some() && !self.locked {
            ms = ms.min(self.idle_lock_ms.saturating_sub(now.millis_since(self.last_activity)));
        }
        std::time::Duration::from_millis(u64::try_from(ms.max(50)).unwrap_or(1_000))
    }

    /// Locks the session (idle timeout or the lock button); forms keep their contents.
    pub fn lock(&mut self) {
        if let Some(s) = &self.staff {
            let id = s.id.clone();
            self.audit(AuditAction::SignOut, None, "lock");
            self.locked = true;
            self.revealed.clear();
            self.signin.preselect(Some(id));
        }
    }

    fn top_bar(&mut self, ui: &mut Ui, tr: Tr) {
        egui::Panel::top("top_bar").show(ui, |ui| {
            // Wraps to a second row when a role has more tabs than the screen is wide (supervisors).
            ui.horizontal_wrapped(|ui| {
                ui.heading(RichText::new(tr.t("app.title")).color(theme::ACCENT).strong());
                ui.add_space(24.0);
                if self.staff.is_some() && !self.locked {
                    for (screen, key) in [
                        (Screen::Register, "nav.register"),
                        (Screen::Board, "nav.board"),
                        (Screen::Appointments, "nav.appointments"),
                        (Screen::Consult, "nav.consult"),
                        (Screen::Directory, "nav.directory"),
                        (Screen::Cases, "nav.cases"),
                        (Screen::Followup, "nav.followup"),
                        (Screen::Dashboard, "nav.dashboard"),
                        (Screen::Search, "nav.search"),
                        (Screen::ShiftLog, "nav.shiftlog"),
                        (Screen::Audit, "nav.audit"),
                    ] {
                        if !self.may(screen_action(screen)) || (self.office && screen == Screen::Register) {
                            continue;
                        }
                        if ui
                            .add(
                                egui::Button::selectable(self.screen == screen, tr.t(key))
                                    .frame_when_inactive(true)
                                    .min_size(egui::vec2(96.0, theme::TOUCH)),
                            )
                            .clicked()
                        {
                            self.screen = screen;
                        }
                    }
                }
            });
        });
    }

    /// Sync in plain words: last success, running, or what went wrong; a button to sync now.
    fn sync_status(&self, ui: &mut Ui, tr: Tr) {
        let Some(w) = &self.sync else { return };
        let s = w.status();
        let offset = self.store.utc_offset();
        if !s.enrolled {
            ui.label(RichText::new(tr.t("status.sync_not_enrolled")).color(theme::MUTED))
                .on_hover_text(tr.t("status.sync_not_enrolled_hint"));
            return;
        }
        if s.revoked {
            ui.label(RichText::new(tr.t("status.sync_revoked")).color(theme::ALERT));
        } else if let Some((n, done)) = s.catching_up {
            ui.add(
                egui::ProgressBar::new(f32::from(done) / 1000.0)
                    .desired_width(220.0)
                    .text(tr.f("status.sync_catching_up", &[("n", &n)])),
            );
        } else if s.running {
            ui.label(tr.t("status.sync_running"));
        } else if let Some(e) = &s.last_error {
            ui.label(RichText::new(tr.f("status.sync_error", &[("error", e)])).color(theme::WARN)).on_hover_text(e);
        } else if let Some(t) = s.last_success {
            ui.label(
                RichText::new(tr.f("status.sync_ok", &[("time", &t.local(offset).format("%m-%d %H:%M"))]))
                    .color(theme::OK),
            );
        }
        if !s.running && !s.revoked && ui.button(tr.t("status.sync_now")).clicked() {
            w.sync_now();
        }
    }

    /// Language, patient mode, lock and sign-out, at the right of the status bar.
    fn session_buttons(&mut self, ui: &mut Ui, tr: Tr) {
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let other = match self.tr.lang {
                Language::ZhCn => Language::En,
                Language::En => Language::ZhCn,
            };
            if ui.button(tr.t("app.switch_language")).clicked() {
                self.tr = Tr::new(other);
            }
            if self.staff.is_some() && !self.locked {
                if !self.office && ui.button(tr.t("app.patient_mode")).clicked() {
                    self.enter_patient_mode();
                }
                if ui.button(tr.t("app.sign_out")).clicked() {
                    self.sign_out();
                }
                if ui.button(tr.t("app.lock")).clicked() {
                    self.lock();
                }
            }
        });
    }

    fn status_bar(&mut self, ui: &mut Ui, tr: Tr) {
        // Refresh on every write, and every 10 s for what the sync thread changes (acknowledgements).
        let now = self.store.now();
        let stale = self.stats_at.is_none_or(|t| now.millis_since(t) >= 10_000);
        if stale || self.stats.as_ref().is_none_or(|(v, _)| *v != self.version) {
            self.stats_at = Some(now);
            match self.store.stats() {
                Ok(s) => self.stats = Some((self.version, s)),
                Err(e) => self.last_error = Some(e.to_string()),
            }
            self.sweep_no_shows();
        }
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                match &self.staff {
                    Some(s) => ui.label(format!("{} · {}", s.name, tr.k("role", role_key(s.role)))),
                    None => ui.label(RichText::new(tr.t("status.signed_out")).color(theme::MUTED)),
                };
                ui.separator();
                let now = self.store.now().local(self.store.utc_offset());
                ui.label(now.format("%Y-%m-%d %H:%M").to_string());
                ui.separator();
                if let Some((_, s)) = &self.stats {
                    ui.label(tr.f("status.outbox", &[("n", &s.outbox_pending)]));
                }
                self.sync_status(ui, tr);
                ui.separator();
                match &self.last_error {
                    None => ui.label(RichText::new(tr.t("status.store_ok")).color(theme::OK)),
                    Some(e) => ui.label(RichText::new(tr.f("status.store_error", &[("error", e)])).color(theme::ALERT)),
                };
                self.session_buttons(ui, tr);
            });
        });
    }

    /// Marks the bookings whose session has ended without the patient as no-shows, each with its call task (every
    /// ten seconds; a read finds whether any is due before anything is written).
    fn sweep_no_shows(&mut self) {
        match crate::command::appointments::sweep_if_due(&self.store) {
            Ok(0) => {}
            Ok(_) => self.version += 1,
            Err(e) => self.last_error = Some(e.to_string()),
        }
    }

    /// Takes the results of the search and the import once their threads are done.
    fn poll_jobs(&mut self) {
        let tr = self.tr;
        if let Some(r) = self.import_job.as_ref().and_then(Job::poll) {
            self.import_job = None;
            let r = r.unwrap_or_else(|_| Err(tr.t("search.failed").to_string()));
            if let Ok(report) = &r {
                let detail = format!("import discharges: {} imported", report.imported);
                self.audit(AuditAction::Change, None, &detail);
            }
            if r.as_ref().is_ok_and(|r| r.imported > 0) {
                self.version += 1;
            }
            self.followup.on_import(r);
        }
        if let Some(r) = self.search_job.as_ref().and_then(Job::poll) {
            self.search_job = None;
            self.search.on_results(r.unwrap_or_else(|_| Err(tr.t("search.failed").to_string())));
        }
    }

    /// Records other desks of the site changed arrived: screens showing records read them again (a form being
    /// typed keeps what is in it; the screens decide how to show a change under an open record).
    fn take_remote_changes(&mut self) {
        if let Some(w) = &self.sync {
            let n = w.status().remote_changes;
            if n != self.remote_seen {
                self.remote_seen = n;
                self.version += 1;
            }
        }
    }

    /// The role of the staff member who may act now: nobody while locked or in patient mode.
    fn session_role(&self) -> Option<Role> {
        if self.locked || self.patient.is_some() {
            return None;
        }
        self.staff.as_ref().map(|s| s.role)
    }

    /// Whether the staff member signed in now may do `action` (screens hide what they may not).
    pub fn may(&self, action: crate::access::Action) -> bool {
        crate::access::check(self.session_role(), action).is_ok()
    }

    fn by(&self) -> StaffRef {
        StaffRef(self.staff.as_ref().map(|s| s.id.clone()).unwrap_or_default())
    }

    fn written(&mut self, r: Result<Option<crate::model::RecordId>, StoreError>) -> Outcome {
        match r {
            Ok(id) => {
                self.version += 1;
                self.last_error = None;
                // Other desks of the site see it as soon as HQ has it.
                if let Some(w) = &self.sync
                    && w.is_live()
                {
                    w.sync_now();
                }
                Outcome::Done(id)
            }
            Err(StoreError::Invalid(e)) => Outcome::Invalid(e),
            Err(e) => {
                let m = e.to_string();
                self.last_error = Some(m.clone());
                Outcome::Failed(m)
            }
        }
    }

    /// Appends an audit entry by the signed-in staff member in a transaction of its own; a failure shows in the
    /// status bar. Returns whether the entry was written.
    fn audit(&mut self, action: AuditAction, target: Option<AuditTarget>, detail: &str) -> bool {
        let by = self.by();
        self.audit_as(&by, action, target, detail)
    }

    fn audit_as(&mut self, actor: &StaffRef, action: AuditAction, target: Option<AuditTarget>, detail: &str) -> bool {
        match self.store.audit(actor, action, target, detail) {
            Ok(_) => true,
            Err(e) => {
                self.last_error = Some(e.to_string());
                false
            }
        }
    }

    /// Signs the staff member out: the session's revealed numbers, open records and half-filled forms are
    /// forgotten, so the next person starts from empty screens.
    pub fn sign_out(&mut self) {
        if self.staff.is_some() {
            self.audit(AuditAction::SignOut, None, "sign out");
        }
        self.staff = None;
        self.locked = false;
        self.signin = SignInScreen::default();
        self.reset_screens();
    }

    /// Empties every staff screen (a new person at the desk).
    fn reset_screens(&mut self) {
        self.revealed.clear();
        self.register = RegisterScreen::default();
        self.board = BoardScreen::default();
        self.consult = ConsultScreen::default();
        self.appointments = AppointmentsScreen::default();
        self.directory = DirectoryScreen::default();
        self.shiftlog = ShiftLogScreen::default();
        self.search = SearchScreen::default();
        self.cases = CasesScreen::default();
        self.followup = FollowupScreen::default();
        self.dashboard = DashboardScreen::default();
        self.audit = AuditScreen::default();
    }

    /// Whether the phone number of `id` was revealed in this session.
    pub fn is_revealed(&self, id: RecordId) -> bool {
        self.revealed.contains(&id)
    }

    /// Runs a change and its audit entry in one durable transaction: both are written, or neither.
    fn change(
        &mut self,
        kind: RecordKind,
        detail: &str,
        f: impl FnOnce(&mut WriteCtx<'_>, &StaffRef) -> Result<RecordId, StoreError>,
    ) -> Outcome {
        let by = self.by();
        let r = self.store.write(|ctx| {
            let id = f(ctx, &by)?;
            ctx.audit(&by, AuditAction::Change, Some(AuditTarget { kind, id }), detail)?;
            Ok(Some(id))
        });
        self.written(r)
    }

    /// Applies a command: one short durable transaction per write, each change with its audit entry.
    pub fn apply(&mut self, cmd: Command, ctx: &egui::Context) -> Outcome {
        if let Some(action) = crate::access::action_of(&cmd)
            && let Err(refusal) = crate::access::check(self.session_role(), action)
        {
            self.audit(AuditAction::Refused, None, action.name());
            return Outcome::Failed(self.tr.f("access.refused", &[("reason", &refusal)]));
        }
        // A department head works only its department's cases, whatever the screen offered.
        if let Command::Case { id, .. } | Command::Slip { id } = &cmd
            && let Some(role) = self.session_role()
        {
            let department = self.staff.as_ref().and_then(|s| s.department.clone());
            let in_scope = self
                .store
                .get::<crate::model::Case>(*id)
                .ok()
                .flatten()
                .is_none_or(|c| crate::access::case_in_scope(role, department.as_deref(), &c));
            if !in_scope {
                self.audit(
                    AuditAction::Refused,
                    Some(AuditTarget { kind: RecordKind::Case, id: *id }),
                    "other department",
                );
                return Outcome::Failed(self.tr.t("access.other_department").to_string());
            }
        }
        match cmd {
            Command::SignIn { staff, pin } => self.sign_in(&staff, &pin),
            Command::CreateAdmin { id, name, pin, confirm } => self.create_admin(&id, &name, &pin, &confirm),
            Command::Slip { id } => match crate::slip::write_case_slip(&self.store, id) {
                Ok(path) => {
                    self.audit(AuditAction::Print, Some(AuditTarget { kind: RecordKind::Case, id }), "slip");
                    self.file_message = Some(self.tr.f("cases.slip_written", &[("path", &path.display())]));
                    Outcome::Done(Some(id))
                }
                Err(m) => Outcome::Failed(m),
            },
            Command::DirectorySlip { department, doctor, appointment } => {
                match crate::slip::write_directory_slip(&self.store, &department, doctor.as_deref(), appointment) {
                    Ok(path) => {
                        let target = appointment.map(|id| AuditTarget { kind: RecordKind::Appointment, id });
                        self.audit(AuditAction::Print, target, "directory slip");
                        self.file_message = Some(self.tr.f("cases.slip_written", &[("path", &path.display())]));
                        Outcome::Done(appointment)
                    }
                    Err(m) => Outcome::Failed(m),
                }
            }
            Command::ImportDischarges { path } => {
                let store = Arc::clone(&self.store);
                let staff = self.staff.as_ref().map(|s| s.id.clone());
                let import = move || {
                    let opts = crate::import::discharges::ImportOptions { staff, ..Default::default() };
                    crate::import::discharges::import_file(&store, &path, &opts).map_err(|e| e.to_string())
                };
                match Job::spawn("import", ctx, import) {
                    Ok(job) => {
                        self.import_job = Some(job);
                        Outcome::Pending
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Command::Search(q) => {
                self.audit(AuditAction::View, None, "search");
                let store = Arc::clone(&self.store);
                match Job::spawn("search", ctx, move || run_search(&store, &q).map_err(|e| e.to_string())) {
                    Ok(job) => {
                        self.search_job = Some(job);
                        Outcome::Pending
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Command::LogAlert { detail } => {
                self.audit(AuditAction::Alert, None, &detail);
                Outcome::Done(None)
            }
            Command::View { target, what } => {
                self.audit(AuditAction::View, target, what);
                Outcome::Done(target.map(|t| t.id))
            }
            Command::Reveal(target) => {
                // Fail closed: the number is shown only once the reveal is on record.
                if self.audit(AuditAction::Reveal, Some(target), "phone") {
                    self.revealed.insert(target.id);
                    Outcome::Done(Some(target.id))
                } else {
                    Outcome::Failed(self.last_error.clone().unwrap_or_default())
                }
            }
            write @ (Command::Register(_)
            | Command::MoveStep { .. }
            | Command::Change { .. }
            | Command::Consult(_)
            | Command::Link { .. }
            | Command::NewCase(_)
            | Command::Case { .. }
            | Command::Attempt { .. }
            | Command::Claim { .. }
            | Command::Release { .. }
            | Command::PromoteToCase { .. }
            | Command::CaseFromCall { .. }
            | Command::Book(_)
            | Command::Appointment { .. }
            | Command::WriteLog(_)
            | Command::ReadLog { .. }
            | Command::EnrolChronic { .. }
            | Command::SpotCheck) => {
                // Every one of these has a `change_of`; `command::write` refuses anything else, writing nothing.
                let (kind, detail) = crate::command::change_of(&write).unwrap_or((RecordKind::Arrival, String::new()));
                self.change(kind, &detail, |ctx, by| crate::command::write(ctx, &write, by))
            }
            Command::ExportAudit { from, to } => match self.export_audit(from, to) {
                Ok(path) => {
                    self.file_message = Some(self.tr.f("audit.exported", &[("path", &path.display())]));
                    Outcome::Done(None)
                }
                Err(m) => Outcome::Failed(m),
            },
        }
    }

    /// Writes the audit log of `from..=to` as CSV into `exports/` beside the store, and audits the export.
    fn export_audit(&mut self, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<std::path::PathBuf, String> {
        if from > to {
            return Err(self.tr.t("audit.bad_range").to_string());
        }
        let dir = self.store.path().parent().map_or_else(|| std::path::PathBuf::from("exports"), |p| p.join("exports"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("audit-{from}-{to}.csv"));
        let offset = self.store.utc_offset();
        let opts = crate::export::ExportOptions {
            kind: RecordKind::Audit,
            from: Moment::start_of_day(from, offset),
            to: to.succ_opt().map_or(Moment(i64::MAX), |d| Moment::start_of_day(d, offset)),
            format: crate::export::Format::Csv,
            mask_phones: true,
        };
        let n = crate::export::export_to_path(&self.store, &opts, &path).map_err(|e| e.to_string())?;
        if !self.audit(AuditAction::Export, None, &format!("audit csv {from}..{to}: {n} rows")) {
            // An export that cannot be put on record is not left behind.
            let _ = std::fs::remove_file(&path);
            return Err(self.last_error.clone().unwrap_or_default());
        }
        Ok(path)
    }
}

/// The action a staff screen is for: its tab shows only to roles that may do it.
fn screen_action(screen: Screen) -> crate::access::Action {
    use crate::access::Action;
    match screen {
        Screen::Register | Screen::Board | Screen::Consult => Action::DeskWork,
        Screen::Search | Screen::Directory => Action::Search,
        Screen::Appointments => Action::Appointments,
        Screen::ShiftLog => Action::ShiftLog,
        Screen::Cases => Action::NewCase,
        Screen::Followup => Action::FollowupCalls,
        Screen::Dashboard => Action::ViewDashboard,
        Screen::Audit => Action::ViewAudit,
    }
}

impl eframe::App for DeskApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(w) = self.sync.take() {
            w.shutdown();
        }
    }
}
