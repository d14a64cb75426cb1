//! The kiosk window's options: size and position from the configuration, full screen without decorations in kiosk
//! mode, OpenGL through glow (with hardware acceleration off for the retry on machines whose driver refuses it).

use crate::config::Config;

/// The native window options for `cfg`; `software` turns hardware acceleration off.
pub fn native_options(cfg: &Config, software: bool) -> eframe::NativeOptions {
    let w = &cfg.window;
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("导医台 GuideDesk")
        .with_app_id("guidedesk")
        .with_inner_size([w.width, w.height])
        .with_min_inner_size([800.0, 600.0]);
    if w.kiosk {
        viewport = viewport
            .with_decorations(false)
            .with_fullscreen(true)
            .with_resizable(false)
            .with_min_inner_size([w.width, w.height])
            .with_max_inner_size([w.width, w.height]);
    }
    if let Some((x, y)) = w.position {
        viewport = viewport.with_position([x, y]);
    }
    eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        multisampling: 0,
        centered: !w.kiosk && w.position.is_none(),
        glow_options: eframe::egui_glow::GlowConfiguration {
            hardware_acceleration: if software {
                eframe::egui_glow::HardwareAcceleration::Off
            } else {
                eframe::egui_glow::HardwareAcceleration::Preferred
            },
            ..Default::default()
        },
        ..Default::default()
    }
}
