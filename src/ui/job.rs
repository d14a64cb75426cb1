//! Work done off the UI thread: a named thread whose one result the screen picks up on a later frame, with a
//! repaint asked for as soon as it is ready (searches, imports, the dashboard's figures).

use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};

/// The job's thread ended without a result (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

/// A background job producing one `T`.
pub struct Job<T> {
    rx: Receiver<T>,
}

impl<T> std::fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Job<T> {
    /// Runs `f` on a thread called `name`; when it returns, `ctx` is asked to repaint so the result is picked up.
    pub fn spawn(name: &str, ctx: &egui::Context, f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(1);
        let ctx = ctx.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let _ = tx.send(f());
            ctx.request_repaint();
        })?;
        Ok(Self { rx })
    }

    /// The result once the job is over: `None` while it runs, then its value, or [`Lost`] if the thread died. Ask
    /// again after a result and the answer is `Lost`; drop the job instead.
    pub fn poll(&self) -> Option<Result<T, Lost>> {
        match self.rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(Lost)),
        }
    }
}
