//! Kiosk configuration: where the data lives and how the kiosk behaves.
//!
//! The data directory comes from `--data-dir`, else `GUIDEDESK_DATA_DIR`, else the platform's data directory
//! (`~/.local/share/guidedesk` on Linux, `%APPDATA%\GuideDesk\GuideDesk\data` on Windows). Settings live in
//! `config.toml` inside it; every key is optional and unknown keys are refused with their name, so a typo never
//! silently falls back to a default.

use std::path::{Path, PathBuf};

use chrono::FixedOffset;
use serde::{Deserialize, Serialize};

/// The configuration file's name inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";

/// UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Language {
    /// Simplified Chinese (default).
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English.
    #[serde(rename = "en")]
    En,
}

/// How the window is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Kiosk mode: fullscreen, undecorated, fixed size and position, no window dragging.
    pub kiosk: bool,
    /// Window width in logical pixels.
    pub width: f32,
    /// Window height in logical pixels.
    pub height: f32,
    /// Window position (left, top), for kiosk mode on a given screen.
    pub position: Option<(f32, f32)>,
    /// Renderer: `glow` (OpenGL, default; runs on Mesa's software rasteriser without a GPU).
    pub renderer: String,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self { kiosk: false, width: 1280.0, height: 800.0, position: None, renderer: "glow".into() }
    }
}

/// Replication with headquarters (`[sync]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Minutes between opportunistic syncs while the kiosk runs (1–1440).
    pub interval_minutes: u32,
    /// The nightly window, local time `HH:MM-HH:MM`; each kiosk picks its own moment in it (per-device jitter).
    pub nightly_window: String,
    /// Days acknowledged ops stay in the outbox before they are pruned (so a restored HQ can be refilled).
    pub retain_acked_days: u32,
    /// Ops per push batch (1–5000). The default, 2000, makes two durable commits (HQ's and the kiosk's) per 2000
    /// ops and keeps a kiosk catching up with a backlog well under HQ's per-client rate limit (20 requests a second
    /// after a burst of 60): at 500 a batch, a 100 000-op backlog took 200 requests and waited on that limit.
    pub batch_size: u32,
    /// Seconds one request to HQ may take before it is abandoned (5–600).
    pub timeout_secs: u32,
    /// Keep one long poll open at HQ (`GET /v1/watch`) and sync as soon as another desk of the site saves a record,
    /// and right after each save here. `false`: only the interval, the nightly window and "sync now".
    pub live: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            interval_minutes: 5,
            nightly_window: "02:00-04:00".into(),
            retain_acked_days: 30,
            batch_size: 2000,
            timeout_secs: 60,
            live: true,
        }
    }
}

impl SyncConfig {
    /// The nightly window as (start, length) in minutes after local midnight.
    pub fn nightly(&self) -> Result<(u32, u32), String> {
        let bad = || format!("sync.nightly_window {:?} is not a window like \"02:00-04:00\"", self.nightly_window);
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (a, b) = self.nightly_window.split_once('-').ok_or_else(bad)?;
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        let len = if end > start { end - start } else { end + 24 * 60 - start };
        Ok((start, len))
    }

    fn validate(&self) -> Result<(), String> {
        self.nightly()?;
        if !(1..=1440).contains(&self.interval_minutes) {
            return Err(format!("sync.interval_minutes must be between 1 and 1440, not {}", self.interval_minutes));
        }
        if !(1..=5000).contains(&self.batch_size) {
            return Err(format!("sync.batch_size must be between 1 and 5000, not {}", self.batch_size));
        }
        if !(5..=600).contains(&self.timeout_secs) {
            return Err(format!("sync.timeout_secs must be between 5 and 600, not {}", self.timeout_secs));
        }
        Ok(())
    }
}

/// The kiosk store (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The store key file (relative paths are inside the data directory) [default: `guidedesk.key` in the data
    /// directory]. The `GUIDEDESK_KEY_FILE` environment variable overrides it.
    pub key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// Where the store key file is for this data directory (environment variable, else setting, else default).
    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        crate::store::crypto::resolve_key_path(data_dir, self.key_file.as_deref())
    }
}

/// The kiosk's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// UI language at start.
    pub language: Language,
    /// The site's UTC offset, `+08:00` for China.
    pub utc_offset: String,
    /// Minutes of inactivity before staff screens lock.
    pub idle_lock_minutes: u32,
    /// Window settings.
    pub window: WindowConfig,
    /// Replication with headquarters.
    pub sync: SyncConfig,
    /// The kiosk store.
    pub store: StoreConfig,
    /// What this desk is: a guide desk in a lobby (`lobby`, the default) or the customer-service office
    /// (`office`: no registration tab and no patient mode; it opens on the complaints).
    pub kind: DeskKind,
}

/// What a desk is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeskKind {
    /// A guide desk (导医台): registration, the board, consultations, complaints, calls, patient mode.
    #[default]
    Lobby,
    /// The customer-service office (客服中心): complaints, calls and the dashboard; no registration, no patient mode.
    Office,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            language: Language::ZhCn,
            utc_offset: "+08:00".into(),
            idle_lock_minutes: 5,
            window: WindowConfig::default(),
            sync: SyncConfig::default(),
            store: StoreConfig::default(),
            kind: DeskKind::Lobby,
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for GuideDesk (the message names the key and line).
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No data directory could be determined.
    #[error("no data directory: pass --data-dir or set GUIDEDESK_DATA_DIR")]
    NoDataDir,
}

impl Config {
    /// Loads `config.toml` from the data directory; a missing file gives the defaults.
    pub fn load(data_dir: &Path) -> Result<Config, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text).map_err(|message| ConfigError::Parse { path, message })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        c.offset()?;
        if !(1..=240).contains(&c.idle_lock_minutes) {
            return Err(format!("idle_lock_minutes must be between 1 and 240, not {}", c.idle_lock_minutes));
        }
        if !(c.window.width >= 320.0 && c.window.height >= 240.0) {
            return Err("window.width and window.height must be at least 320 × 240".into());
        }
        c.sync.validate()?;
        if c.window.renderer != "glow" {
            return Err(format!("window.renderer {:?} is not supported (use \"glow\")", c.window.renderer));
        }
        Ok(c)
    }

    /// The configured UTC offset.
    pub fn offset(&self) -> Result<FixedOffset, String> {
        parse_offset(&self.utc_offset)
    }
}

/// Parses `+08:00` / `-05:30` / `Z`.
pub fn parse_offset(s: &str) -> Result<FixedOffset, String> {
    let bad = || format!("utc_offset {s:?} is not an offset like \"+08:00\"");
    let t = s.trim();
    if t == "Z" || t == "+00:00" {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 || h < 0 || m < 0 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// Resolves the data directory: the explicit value (flag or environment, already merged by the CLI) or the
/// platform default.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    directories::ProjectDirs::from("cn", "GuideDesk", "GuideDesk")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or(ConfigError::NoDataDir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c = Config::parse("language = \"en\"\nutc_offset = \"+05:30\"\n[window]\nkiosk = true\n").unwrap();
        assert_eq!(c.language, Language::En);
        assert_eq!(c.offset().unwrap().local_minus_utc(), 5 * 3600 + 30 * 60);
        assert!(c.window.kiosk);
    }

    #[test]
    fn bad_values_are_named() {
        assert!(Config::parse("langauge = \"en\"").unwrap_err().contains("langauge"));
        assert!(Config::parse("utc_offset = \"8\"").unwrap_err().contains("utc_offset"));
        assert!(Config::parse("idle_lock_minutes = 0").unwrap_err().contains("idle_lock_minutes"));
        assert!(Config::parse("[window]\nrenderer = \"vulkan\"").unwrap_err().contains("renderer"));
    }

    #[test]
    fn sync_section() {
        let c = Config::parse("[sync]\ninterval_minutes = 10\nnightly_window = \"23:30-01:30\"\n").unwrap();
        assert_eq!(c.sync.interval_minutes, 10);
        assert_eq!(c.sync.nightly().unwrap(), (23 * 60 + 30, 120));
        assert_eq!(SyncConfig::default().nightly().unwrap(), (120, 120));
        assert!(Config::parse("[sync]\nnightly_window = \"2am\"").unwrap_err().contains("nightly_window"));
        assert!(Config::parse("[sync]\nbatch_size = 0").unwrap_err().contains("batch_size"));
        assert!(Config::parse("[sync]\nintervall = 3").unwrap_err().contains("intervall"));
    }

    #[test]
    fn store_section() {
        let c = Config::parse("[store]\nkey_file = \"/media/usb/kiosk.key\"\n").unwrap();
        assert_eq!(c.store.key_file.as_deref(), Some(Path::new("/media/usb/kiosk.key")));
        assert_eq!(Config::default().store.key_file, None);
        assert!(Config::parse("[store]\nkeyfile = \"x\"").unwrap_err().contains("keyfile"));
    }

    #[test]
    fn missing_file_gives_defaults_and_bad_file_names_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        std::fs::write(dir.path().join(CONFIG_FILE), "window = 3").unwrap();
        let e = Config::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.toml"), "{e}");
    }
}
