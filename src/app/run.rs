//! Running the kiosk in a window: the app with its fonts, style and background sync worker, and the hidden
//! first-frame exit the benchmark uses.

use std::sync::Arc;

use anyhow::Result;

use super::DeskApp;
use crate::config::Config;
use crate::store::Store;
use crate::ui::theme;

/// Builds the app for a window: fonts and style, and the background sync worker.
fn make_app(cc: &eframe::CreationContext<'_>, store: Arc<Store>, cfg: &Config) -> DeskApp {
    theme::install(&cc.egui_ctx);
    let mut app = DeskApp::new(Arc::clone(&store), cfg);
    let ctx = cc.egui_ctx.clone();
    let data_dir = store.path().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    match crate::kiosk_sync::SyncWorker::spawn(store, data_dir, &cfg.sync, Box::new(move || ctx.request_repaint())) {
        Ok(w) => app.attach_sync(w),
        Err(e) => app.last_error = Some(format!("sync: {e}")),
    }
    app
}

/// Opens the kiosk window and runs until it is closed.
///
/// Renderer: OpenGL through glow, which runs on Mesa's llvmpipe on machines without a GPU (about 150 MB RSS, much
/// less than wgpu's software path). If creating the GL context fails (an old driver), it retries once with hardware
/// acceleration off; when the windowing system itself is missing there is nothing to retry.
pub fn run(store: Store, cfg: &Config) -> Result<()> {
    run_with(store, cfg, RunOptions::default())
}

/// How [`run_with`] runs the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Close the window as soon as its first frame has been painted and presented, printing one line
    /// `first-frame ms=<ms since run_with was called> peak_rss_kb=<VmHWM>` to standard output (start-up
    /// measurements: `guidedesk --exit-after-first-frame`). Nothing is written to the store by this.
    pub exit_after_first_frame: bool,
}

/// [`run`] with options.
pub fn run_with(store: Store, cfg: &Config, options: RunOptions) -> Result<()> {
    let started = std::time::Instant::now();
    let store = Arc::new(store);
    // `guidedesk backup` asks this process for a copy while the window is open (redb allows one process per file).
    let data_dir = store.path().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let _backups =
        crate::store::backup::BackupServer::spawn(Arc::clone(&store), data_dir, std::time::Duration::from_secs(1))?;
    let first = {
        let store = Arc::clone(&store);
        let cfg2 = cfg.clone();
        eframe::run_native(
            "guidedesk",
            crate::ui::window::native_options(cfg, false),
            Box::new(move |cc| Ok(boxed_app(make_app(cc, store, &cfg2), options, started))),
        )
    };
    match first {
        Ok(()) => Ok(()),
        Err(eframe::Error::WinitEventLoop(e)) => {
            Err(anyhow::anyhow!("cannot open the kiosk window (no display available?): {e}"))
        }
        Err(first_err) => {
            let cfg2 = cfg.clone();
            eframe::run_native(
                "guidedesk",
                crate::ui::window::native_options(cfg, true),
                Box::new(move |cc| Ok(boxed_app(make_app(cc, store, &cfg2), options, started))),
            )
            .map_err(|e| {
                anyhow::anyhow!("cannot open the kiosk window: {first_err}; retry without hardware acceleration: {e}")
            })
        }
    }
}

fn boxed_app(app: DeskApp, options: RunOptions, started: std::time::Instant) -> Box<dyn eframe::App> {
    if options.exit_after_first_frame { Box::new(FirstFrameExit { app, started, frames: 0 }) } else { Box::new(app) }
}

/// The kiosk app, closed once its first frame is on screen (see [`RunOptions::exit_after_first_frame`]).
struct FirstFrameExit {
    app: DeskApp,
    started: std::time::Instant,
    /// Frames begun so far.
    frames: u32,
}

impl eframe::App for FirstFrameExit {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
        // The next frame, which reports the first one, should not wait for the app's one-second repaint.
        ui.ctx().request_repaint();
    }

    /// Called as a frame begins: when the second one does, the first was painted and its buffers swapped.
    fn raw_input_hook(&mut self, ctx: &egui::Context, _raw_input: &mut egui::RawInput) {
        self.frames += 1;
        if self.frames == 2 {
            let ms = self.started.elapsed().as_secs_f64() * 1e3;
            let rss = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines().find(|l| l.starts_with("VmHWM"))?.split_whitespace().nth(1)?.parse::<u64>().ok()
                })
                .unwrap_or(0);
            println!("first-frame ms={ms:.1} peak_rss_kb={rss}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn on_exit(&mut self, gl: Option<&eframe::glow::Context>) {
        self.app.on_exit(gl);
    }
}
