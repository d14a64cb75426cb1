//! Owner-only files and directories (Unix modes 0700 / 0600), for every secret GuideDesk keeps on disk: the
//! kiosk's data directory (store, key file by default, `hq.json`, exports) and HQ's (`hq.redb`, `admin.json`).
//! Elsewhere than Unix the operating system's ACLs apply and these only create and write.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parents with mode 0700 (existing directories are left as they are).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Removes the group and other permission bits of an existing file or directory (0755 → 0700, 0644 → 0600; the
/// owner's bits are kept, so a read-only file stays read-only). A directory with the sticky bit (a shared
/// directory such as `/tmp`) is left alone. Returns the mode it had when it was changed.
pub fn make_owner_only(path: &Path) -> std::io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let loose = mode & 0o077 != 0;
        let sticky = meta.is_dir() && mode & 0o1000 != 0;
        if !loose || sticky {
            return Ok(None);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077))?;
        Ok(Some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Prepares a data directory: created 0700 when missing, made owner-only when it exists with looser permissions.
/// Tightening is best effort: a directory this account does not own keeps its mode (the open that follows reports
/// any real problem).
pub fn prepare_private_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dir_all(dir)?;
    let _ = make_owner_only(dir);
    Ok(())
}

/// Makes sure a database file is owner-only before the database engine opens it: a missing file is created empty
/// with mode 0600 (the engine initialises an empty file), an existing one loses its group and other bits (best
/// effort, as for directories).
pub fn prepare_private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = make_owner_only(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Writes `body` to `path` atomically with mode 0600: a fresh temporary file (a stale one is removed first, so its
/// mode never carries over), synced, then renamed into place.
pub fn write_private_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
