//! The eframe application: wires the store to the screens.

use anyhow::Result;

use crate::config::Config;
use crate::store::Store;

/// The kiosk application state.
#[derive(Debug)]
pub struct GuideDeskApp {
    store: Store,
}

impl GuideDeskApp {
    /// An app over an open store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl eframe::App for GuideDeskApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("GuideDesk");
            match self.store.stats() {
                Ok(s) => {
                    for (k, n) in &s.records {
                        ui.label(format!("{k}: {n}"));
                    }
                    ui.label(format!("outbox pending: {}", s.outbox_pending));
                }
                Err(e) => {
                    ui.colored_label(egui::Color32::RED, e.to_string());
                }
            }
        });
    }
}

/// Opens the kiosk window and runs until it is closed.
pub fn run(store: Store, cfg: &Config) -> Result<()> {
    let viewport =
        egui::ViewportBuilder::default().with_title("GuideDesk").with_inner_size([cfg.window.width, cfg.window.height]);
    let options = eframe::NativeOptions { viewport, renderer: eframe::Renderer::Glow, ..Default::default() };
    eframe::run_native("GuideDesk", options, Box::new(|_cc| Ok(Box::new(GuideDeskApp::new(store)))))
        .map_err(|e| anyhow::anyhow!("cannot open the kiosk window: {e}"))
}
