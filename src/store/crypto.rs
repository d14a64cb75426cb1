//! Encryption at rest for the kiosk store.
//!
//! - **The store key** is 32 random bytes kept in a key file outside the database file (mode 0600, created on first
//!   run; see [`resolve_key_path`]). Everything else is derived from it with HMAC-SHA256 under fixed labels, so the
//!   cipher key and the blind-index key are independent.
//! - **Sealed values**: record values (`rec_*`) and outbox ops are `[SEAL_MAGIC][key id u32 LE][nonce 24][ciphertext
//!   ‖ tag]`, XChaCha20-Poly1305 with a fresh random nonce per write. The associated data names the table and the
//!   record key, so a blob moved to another record or table fails authentication.
//! - **Blind indexes**: phone numbers, name prefixes and follow-up source keys are indexed by a truncated keyed
//!   hash (HMAC-SHA256 with the blind key), never by their text.
//! - **Key check**: `meta.key_check` holds the key id and a keyed check value, so a wrong key is refused at open
//!   before anything is decrypted or written.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::StoreError;

/// Default key file name, in the data directory next to (never inside) `guidedesk.redb`.
pub const KEY_FILE: &str = "guidedesk.key";

/// Environment variable naming the key file (removable media, an OS keystore mount); overrides `config.toml`.
pub const KEY_ENV: &str = "GUIDEDESK_KEY_FILE";

/// First byte of every sealed value. A plaintext record starts with its schema (`[1, 0]`), so the two never mix up.
pub const SEAL_MAGIC: u8 = 0xE5;

/// Index keys hash each name prefix up to this many characters; longer prefixes are checked after decrypting.
pub const NAME_PREFIX_CHARS: usize = 12;

pub(crate) const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// The nonce of a sealed value: every sealing draws a fresh one, so it names one version of the value (a rewrite,
/// a merge, a key rotation all seal anew).
pub(crate) fn sealed_nonce(sealed: &[u8]) -> Option<[u8; NONCE_LEN]> {
    sealed.get(5..HEADER_LEN).and_then(|n| n.try_into().ok())
}
const KEY_LINE: &str = "guidedesk-store-key v1 ";
/// The first word of a key line (any version).
const KEY_WORD: &[u8] = b"guidedesk-store-key";

/// Largest key file accepted: a key file is a comment and one line of 87 characters.
pub const KEY_FILE_MAX: u64 = 4096;

/// Where the local staff accounts (with their PIN hashes) are sealed: `meta` key `local_staff`.
pub const LOCAL_STAFF_PLACE: &str = "meta local_staff";
/// Where the reference-data snapshot (with HQ's staff and their PIN hashes) is sealed: `reference` key `snapshot`.
pub const REFERENCE_PLACE: &str = "reference snapshot";

/// A value sealed with the store key outside the store: a hex string field of a JSON file in the data directory.
/// A key rotation re-seals it (see [`reseal_field_prepare`]).
#[derive(Debug, Clone, Copy)]
pub struct SealedField {
    /// File name in the data directory.
    pub file: &'static str,
    /// The JSON field holding the sealed value (hex).
    pub field: &'static str,
    /// The field holding the value sealed with the next key while a rotation is in progress.
    pub next: &'static str,
    /// The associated data the value is sealed for.
    pub place: &'static str,
}

/// The kiosk's HQ bearer credential in `hq.json`.
pub const HQ_TOKEN: SealedField =
    SealedField { file: "hq.json", field: "token_sealed", next: "token_sealed_next", place: "hq.json token" };

/// Every value sealed with the store key outside the store.
pub const SEALED_FIELDS: &[SealedField] = &[HQ_TOKEN];

type HmacSha256 = Hmac<Sha256>;

/// Problems with the key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read, created or replaced.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file exists but holds no valid key.
    #[error("key file {path} is not a GuideDesk store key: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The key file (or another secret file) can be read by other accounts than its owner.
    #[error(
        "UNPROTECTED SECRET FILE: {path} has mode {mode:04o}, so other accounts on this computer can read it; it \
         must be readable by its owner only. Run `chmod 600 {path}`"
    )]
    Unprotected {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The operating system's random generator failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// Refuses a key file that its group or other accounts may read or write (Unix; elsewhere the OS's ACLs apply).
#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Unprotected { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)]
fn check_owner_only(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

/// Refuses a secret file (a key file, HQ's reporting token file) that other accounts than its owner may read: the
/// same rule as the store key file, for other secrets read from files.
pub fn check_secret_file(path: &Path) -> Result<(), KeyError> {
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
    check_owner_only(path, &meta)
}

/// Parses the text of a key file: comment lines (`#`) and blank lines are skipped; the first line starting with
/// `guidedesk-store-key` must be `guidedesk-store-key v1 ` and 64 hex digits. Errors describe the problem without
/// quoting the file.
fn parse_key_file(bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let line = bytes
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| l.starts_with(KEY_WORD))
        .ok_or("no `guidedesk-store-key v1` line: this is not a key file, or its header is damaged")?;
    let rest = line[KEY_WORD.len()..].trim_ascii_start();
    let Some(digits) = rest.strip_prefix(b"v1").filter(|r| r.first().is_none_or(u8::is_ascii_whitespace)) else {
        return Err("the key line is not `guidedesk-store-key v1`: an unknown version or a damaged header".into());
    };
    let digits = digits.trim_ascii();
    if digits.is_empty() {
        return Err("the key line holds no key (the file is truncated)".into());
    }
    if let Some(i) = digits.iter().position(|b| !b.is_ascii()) {
        return Err(format!("the key has a non-ASCII byte at position {}; a key is 64 hex digits", i + 1));
    }
    if let Some(i) = digits.iter().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!("the key has a character that is not a hex digit at position {}", i + 1));
    }
    if digits.len() % 2 == 1 {
        return Err(format!("the key has an odd number of hex digits ({}); a key is 64", digits.len()));
    }
    if digits.len() != 64 {
        let why = if digits.len() < 64 { "the file is truncated" } else { "too long" };
        return Err(format!("the key has {} hex digits, not 64 ({why})", digits.len()));
    }
    let mut k = Zeroizing::new([0u8; 32]);
    for (b, pair) in k.iter_mut().zip(digits.chunks_exact(2)) {
        *b = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(k)
}

/// The value of an ASCII hex digit (0 for anything else; callers check first).
fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Decodes lower- or upper-case hex; `None` for odd lengths and non-hex characters.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 2 == 1 || !t.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(t.chunks_exact(2).map(|p| (hex_value(p[0]) << 4) | hex_value(p[1])).collect())
}

/// The key id in a sealed value's header, if it is one.
pub fn sealed_key_id(sealed: &[u8]) -> Option<u32> {
    (is_sealed(sealed) && sealed.len() >= HEADER_LEN)
        .then(|| u32::from_le_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]))
}

// Owner-only files and directories live in `crate::private_files` (HQ uses them too); re-exported for the store.
pub use crate::private_files::{
    create_private_dir_all, make_owner_only, prepare_private_dir, prepare_private_file, write_private_file,
};

/// Rotation, before the store's commit: where `dir/<file>` holds `field` sealed with `old`, adds `next` sealed
/// with `new`, so that whichever key the store ends up with, the file holds the value sealed with it.
pub fn reseal_field_prepare(dir: &Path, f: &SealedField, old: &Keys, new: &Keys) -> Result<(), StoreError> {
    let path = dir.join(f.file);
    let Some(mut doc) = read_json_object(&path)? else { return Ok(()) };
    let Some(sealed) = doc.get(f.field).and_then(serde_json::Value::as_str).and_then(unhex) else { return Ok(()) };
    if sealed_key_id(&sealed) != Some(old.id()) {
        return Ok(());
    }
    let plain = Zeroizing::new(old.open(f.place, &sealed)?);
    doc.insert(f.next.into(), hex(&new.seal(f.place, &plain)?).into());
    write_json_object(&path, &doc)
}

/// Rotation, after the key file was replaced: the value sealed with the new key becomes the value. (If this is
/// never reached, the reader finds the value under `next` and finishes it.)
pub fn reseal_field_finish(dir: &Path, f: &SealedField, new: &Keys) -> Result<(), StoreError> {
    let path = dir.join(f.file);
    let Some(mut doc) = read_json_object(&path)? else { return Ok(()) };
    let next = doc.get(f.next).and_then(serde_json::Value::as_str).and_then(unhex);
    if next.as_deref().and_then(sealed_key_id) != Some(new.id()) {
        return Ok(());
    }
    if let Some(v) = doc.remove(f.next) {
        doc.insert(f.field.into(), v);
    }
    write_json_object(&path, &doc)
}

fn read_json_object(path: &Path) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(serde_json::Value::Object(m)) => Ok(Some(m)),
            _ => Err(StoreError::Meta(format!("{} is damaged: not a JSON object", path.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io { path: path.to_path_buf(), source }.into()),
    }
}

fn write_json_object(path: &Path, doc: &serde_json::Map<String, serde_json::Value>) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(doc).map_err(|e| StoreError::Meta(format!("{}: {e}", path.display())))?;
    write_private_file(path, &body).map_err(|source| KeyError::Io { path: path.to_path_buf(), source }.into())
}

/// The store's master key (zeroed when dropped).
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKey({:08x})", self.derive().id)
    }
}

impl StoreKey {
    /// A new random key.
    pub fn generate() -> Result<StoreKey, KeyError> {
        let mut k = Zeroizing::new([0u8; 32]);
        OsRng.try_fill_bytes(k.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(StoreKey(k))
    }

    /// Reads a key file. The file must be a regular file readable by its owner only (on Unix: no group or other
    /// permission bits, like ssh's private keys) and hold one `guidedesk-store-key v1 <64 hex digits>` line. Every
    /// problem is an error naming the file and what is wrong; no byte of the file is ever echoed.
    pub fn load(path: &Path) -> Result<StoreKey, KeyError> {
        use std::io::Read as _;
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        let malformed = |detail: String| KeyError::Malformed { path: path.to_path_buf(), detail };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(malformed("it is not a regular file".into()));
        }
        check_owner_only(path, &meta)?;
        if meta.len() > KEY_FILE_MAX {
            return Err(malformed(format!(
                "it is {} bytes long; a key file is one short line (under {KEY_FILE_MAX} bytes)",
                meta.len()
            )));
        }
        // Capacity for the whole file up front, so the buffer never reallocates and leaves key bytes behind.
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_FILE_MAX as usize + 1));
        std::fs::File::open(path).and_then(|f| f.take(KEY_FILE_MAX + 1).read_to_end(&mut bytes)).map_err(io)?;
        if bytes.len() as u64 > KEY_FILE_MAX {
            return Err(malformed(format!("it is longer than {KEY_FILE_MAX} bytes; a key file is one short line")));
        }
        parse_key_file(&bytes).map(StoreKey).map_err(malformed)
    }

    /// Writes the key to a new file with mode 0600; never replaces an existing file. The key is written to a
    /// temporary file, synced, then linked into place, so a crash never leaves a partial key file (on file systems
    /// without hard links, such as FAT on a USB stick, it is written in place with `create_new`).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir_all(parent).map_err(io)?;
        }
        if path.exists() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a key file is already there")));
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        self.write_file(&tmp).map_err(io)?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(io(e)),
            Err(_) => self.write_file(path).map_err(io)?,
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(parent)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Creates `path` (which must not exist) with mode 0600 and the key, synced to disk.
    fn write_file(&self, path: &Path) -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path)?;
        let mut text = Zeroizing::new(String::with_capacity(200));
        text.push_str(
            "# GuideDesk store key. Without it the kiosk store cannot be read: keep a copy offline, never beside a \
             backup of the store.\n",
        );
        text.push_str(KEY_LINE);
        text.push_str(&hex(self.0.as_ref()));
        text.push('\n');
        f.write_all(text.as_bytes())?;
        f.sync_all()
    }

    /// The derived keys.
    pub fn derive(&self) -> Keys {
        let label = |l: &[u8]| -> [u8; 32] {
            let mut m = <HmacSha256 as Mac>::new_from_slice(self.0.as_ref()).unwrap_or_else(|_| unreachable_hmac());
            m.update(l);
            m.finalize().into_bytes().into()
        };
        let enc = Zeroizing::new(label(b"guidedesk/store/encrypt/v1"));
        let blind = Zeroizing::new(label(b"guidedesk/store/blind-index/v1"));
        let check = label(b"guidedesk/store/key-check/v1");
        let id = u32::from_le_bytes([check[0], check[1], check[2], check[3]]);
        let blind = <HmacSha256 as Mac>::new_from_slice(blind.as_ref()).unwrap_or_else(|_| unreachable_hmac());
        Keys { id, cipher: XChaCha20Poly1305::new(enc.as_ref().into()), blind, check }
    }
}

/// HMAC accepts keys of any length; this is never reached.
fn unreachable_hmac() -> HmacSha256 {
    unreachable!("HMAC-SHA256 accepts every key length")
}

/// The keys derived from a [`StoreKey`]: the cipher, the blind-index key, the key id and check value.
pub struct Keys {
    id: u32,
    cipher: XChaCha20Poly1305,
    /// HMAC-SHA256 keyed with the blind-index key, its key already absorbed: each blind key clones it instead of
    /// hashing the key's two pads again (half the hashing of an index entry).
    blind: HmacSha256,
    check: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({:08x})", self.id)
    }
}

impl Keys {
    /// The key id written into every sealed value.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The value stored in `meta.key_check`: key id then check value.
    pub fn check_value(&self) -> Vec<u8> {
        let mut v = self.id.to_le_bytes().to_vec();
        v.extend_from_slice(&self.check);
        v
    }

    /// Whether a stored `meta.key_check` value belongs to this key.
    pub fn matches(&self, stored: &[u8]) -> bool {
        stored == self.check_value().as_slice()
    }

    /// Encrypts `plain` for `place` (the table and record key, bound as associated data).
    pub fn seal(&self, place: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|e| StoreError::Meta(format!("no randomness for a nonce: {e}")))?;
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: place.as_bytes() })
            .map_err(|_| StoreError::Crypto { place: place.to_string(), problem: "cannot be encrypted".into() })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(SEAL_MAGIC);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a sealed value stored at `place`. A value that is not sealed, sealed with another key, altered or
    /// moved from another place is an error naming `place`.
    pub fn open(&self, place: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let fail = |problem: String| StoreError::Crypto { place: place.to_string(), problem };
        if !is_sealed(sealed) {
            return Err(fail("is not encrypted although the store is".into()));
        }
        if sealed.len() < HEADER_LEN + 16 {
            return Err(fail(format!("is truncated ({} bytes)", sealed.len())));
        }
        let id = u32::from_le_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        if id != self.id {
            return Err(fail(format!("was encrypted with key {id:08x}, but the loaded key is {:08x}", self.id)));
        }
        self.cipher
            .decrypt(
                XNonce::from_slice(&sealed[5..HEADER_LEN]),
                Payload { msg: &sealed[HEADER_LEN..], aad: place.as_bytes() },
            )
            .map_err(|_| fail("failed authentication: it was altered or moved from another record".into()))
    }

    /// The blind-index key for `text` in the index `domain` (`phone`, `name`, `source`): 32 hex digits.
    pub fn blind(&self, domain: &str, text: &str) -> String {
        let mut m = self.blind.clone();
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(text.as_bytes());
        let out = m.finalize().into_bytes();
        hex(&out[..16])
    }

    /// Blind keys of every prefix of `name` up to [`NAME_PREFIX_CHARS`] characters.
    pub fn name_prefixes(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (n, (i, c)) in name.char_indices().enumerate() {
            if n >= NAME_PREFIX_CHARS {
                break;
            }
            out.push(self.blind("name", &name[..i + c.len_utf8()]));
        }
        out
    }

    /// The blind key to look up for a name prefix query (its first [`NAME_PREFIX_CHARS`] characters).
    pub fn name_query(&self, prefix: &str) -> String {
        let end = prefix.char_indices().nth(NAME_PREFIX_CHARS).map_or(prefix.len(), |(i, _)| i);
        self.blind("name", &prefix[..end])
    }
}

/// Where a record value is stored, bound as associated data and named in errors: `rec_<kind> record <id hex>`.
pub fn record_place(table: &str, id: u128) -> String {
    format!("{table} record {id:032x}")
}

/// Where an outbox op is stored: `outbox op <seq>`.
pub fn outbox_place(seq: u64) -> String {
    format!("outbox op {seq}")
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    out.into_iter().map(char::from).collect()
}

/// Writes the lower-case hex digits of `bytes` into `out` (two per byte, as far as `out` reaches), allocating
/// nothing.
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// Whether stored bytes are a sealed value.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&SEAL_MAGIC)
}

/// Where the key file is: `GUIDEDESK_KEY_FILE` if set, else `configured` (relative paths are inside the data
/// directory), else `guidedesk.key` in the data directory.
pub fn resolve_key_path(data_dir: &Path, configured: Option<&Path>) -> PathBuf {
    if let Some(p) = std::env::var_os(KEY_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match configured {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => data_dir.join(p),
        None => data_dir.join(KEY_FILE),
    }
}

/// The file a rotation writes the new key to before the store is re-encrypted (`<key file>.new`).
pub fn pending_key_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = StoreKey::generate().unwrap().derive();
        let a = k.seal("rec_arrival:1", "张三 13800138000".as_bytes()).unwrap();
        let b = k.seal("rec_arrival:1", "张三 13800138000".as_bytes()).unwrap();
        assert_ne!(a, b, "a fresh nonce per write");
        assert_eq!(k.open("rec_arrival:1", &a).unwrap(), "张三 13800138000".as_bytes());
        let moved = k.open("rec_arrival:2", &a).unwrap_err().to_string();
        assert!(moved.contains("rec_arrival:2") && moved.contains("authentication"), "{moved}");
        let mut altered = a.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(k.open("rec_arrival:1", &altered).is_err());
        let other = StoreKey::generate().unwrap().derive();
        let e = other.open("rec_arrival:1", &a).unwrap_err().to_string();
        assert!(e.contains("was encrypted with key"), "{e}");
        assert!(k.open("x", b"\x01\x00plain").unwrap_err().to_string().contains("not encrypted"));
        assert!(k.open("x", &a[..10]).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn key_file_round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(KEY_FILE);
        let key = StoreKey::generate().unwrap();
        key.write_new(&path).unwrap();
        assert_eq!(StoreKey::load(&path).unwrap().derive().check_value(), key.derive().check_value());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let before = std::fs::read(&path).unwrap();
        assert!(StoreKey::generate().unwrap().write_new(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::write(&path, "hello").unwrap();
        assert!(StoreKey::load(&path).unwrap_err().to_string().contains("not a GuideDesk store key"));
    }

    #[test]
    fn key_text_problems_are_named_without_echoing_the_key() {
        let k = "0123456789abcdef".repeat(4);
        let ok = format!("# comment\r\n\nguidedesk-store-key v1 {k}\r\n");
        assert_eq!(parse_key_file(ok.as_bytes()).unwrap()[..2], [0x01, 0x23]);
        assert!(parse_key_file(format!("guidedesk-store-key v1 {}", k.to_uppercase()).as_bytes()).is_ok());
        let cases: [(Vec<u8>, &str); 9] = [
            (Vec::new(), "empty"),
            (b" \n\n".to_vec(), "empty"),
            (
                format!("guidedesk-store-key v1 {}", &k[..40]).into_bytes(),
                "40 hex digits, not 64 (the file is truncated)",
            ),
            (format!("guidedesk-store-key v1 {k}00").into_bytes(), "66 hex digits, not 64 (too long)"),
            (format!("guidedesk-store-key v1 {}", &k[..63]).into_bytes(), "odd number of hex digits (63)"),
            (format!("guidedesk-store-key v1 {}g", &k[..63]).into_bytes(), "not a hex digit at position 64"),
            (
                format!("guidedesk-store-key v1 {}\u{00e9}{}", &k[..61], &k[63..]).into_bytes(),
                "non-ASCII byte at position 62",
            ),
            (format!("guidedesk-store-key v2 {k}").into_bytes(), "unknown version"),
            (format!("guidedesk store key v1 {k}").into_bytes(), "no `guidedesk-store-key v1` line"),
        ];
        for (bytes, expect) in cases {
            let e = parse_key_file(&bytes).unwrap_err();
            assert!(e.contains(expect), "{e:?} should say {expect:?}");
            assert!(!e.contains(&k[..8]), "{e}");
        }
        assert!(parse_key_file(b"guidedesk-store-key v1x 00").unwrap_err().contains("unknown version"));
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_and_directories_are_owner_only_and_looser_ones_tightened() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let set = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        prepare_private_dir(&dir).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));
        set(&dir, 0o755);
        prepare_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // The owner's bits are kept (a read-only directory stays read-only); shared sticky directories are left.
        set(&dir, 0o555);
        assert_eq!(make_owner_only(&dir).unwrap(), Some(0o555));
        assert_eq!(mode(&dir), 0o500);
        set(&dir, 0o1777);
        assert_eq!(make_owner_only(&dir).unwrap(), None);
        set(&dir, 0o700);

        let db = dir.join("x.redb");
        prepare_private_file(&db).unwrap();
        assert_eq!((mode(&db), std::fs::metadata(&db).unwrap().len()), (0o600, 0));
        std::fs::write(&db, b"data").unwrap();
        set(&db, 0o644);
        prepare_private_file(&db).unwrap();
        assert_eq!((mode(&db), std::fs::read(&db).unwrap()), (0o600, b"data".to_vec()));

        let f = dir.join("hq.json");
        std::fs::write(dir.join("hq.json.tmp"), b"stale").unwrap();
        set(&dir.join("hq.json.tmp"), 0o666);
        write_private_file(&f, b"{}").unwrap();
        assert_eq!((mode(&f), std::fs::read(&f).unwrap()), (0o600, b"{}".to_vec()));
        assert!(!dir.join("hq.json.tmp").exists());

        // Key files: group- or world-accessible ones are refused, naming the mode and the fix.
        let key = dir.join("k.key");
        StoreKey::generate().unwrap().write_new(&key).unwrap();
        for loose in [0o640, 0o604, 0o620, 0o644] {
            set(&key, loose);
            let e = StoreKey::load(&key).unwrap_err();
            assert!(matches!(e, KeyError::Unprotected { mode, .. } if mode == loose), "{e}");
            let e = e.to_string();
            assert!(e.contains(&format!("{loose:04o}")) && e.contains(&format!("chmod 600 {}", key.display())), "{e}");
            assert!(check_secret_file(&key).is_err());
        }
        set(&key, 0o400);
        assert!(StoreKey::load(&key).is_ok() && check_secret_file(&key).is_ok());
    }

    #[test]
    fn a_sealed_field_survives_a_rotation_at_every_step() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (StoreKey::generate().unwrap().derive(), StoreKey::generate().unwrap().derive());
        let path = dir.path().join(HQ_TOKEN.file);
        let sealed = hex(&old.seal(HQ_TOKEN.place, b"secret").unwrap());
        let doc = serde_json::json!({ "url": "https://hq", "token_sealed": sealed });
        std::fs::write(&path, doc.to_string()).unwrap();
        let field = |name: &str| -> Option<Vec<u8>> {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            v.get(name).and_then(|s| s.as_str()).and_then(unhex)
        };
        reseal_field_prepare(dir.path(), &HQ_TOKEN, &old, &new).unwrap();
        // Before the commit: the old key still opens the value, the new one opens `next`.
        assert_eq!(old.open(HQ_TOKEN.place, &field("token_sealed").unwrap()).unwrap(), b"secret");
        let next = field("token_sealed_next").unwrap();
        assert_eq!(sealed_key_id(&next), Some(new.id()));
        assert_eq!(new.open(HQ_TOKEN.place, &next).unwrap(), b"secret");
        reseal_field_finish(dir.path(), &HQ_TOKEN, &new).unwrap();
        assert_eq!(new.open(HQ_TOKEN.place, &field("token_sealed").unwrap()).unwrap(), b"secret");
        assert!(field("token_sealed_next").is_none());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["url"], "https://hq", "other fields are kept");
        // No file, or a file without the field: nothing to do.
        std::fs::remove_file(&path).unwrap();
        reseal_field_prepare(dir.path(), &HQ_TOKEN, &old, &new).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn blind_keys_are_keyed_and_prefixes_bounded() {
        let k1 = StoreKey::generate().unwrap().derive();
        let k2 = StoreKey::generate().unwrap().derive();
        assert_eq!(k1.blind("phone", "13800138000"), k1.blind("phone", "13800138000"));
        assert_ne!(k1.blind("phone", "13800138000"), k2.blind("phone", "13800138000"));
        assert_ne!(k1.blind("phone", "x"), k1.blind("name", "x"));
        assert_eq!(
            k1.name_prefixes("张三丰"),
            vec![k1.blind("name", "张"), k1.blind("name", "张三"), k1.blind("name", "张三丰")]
        );
        let long = "Bartholomew Alexander";
        assert_eq!(k1.name_prefixes(long).len(), NAME_PREFIX_CHARS);
        assert_eq!(k1.name_query(long), k1.blind("name", "Bartholomew "));
    }
}
