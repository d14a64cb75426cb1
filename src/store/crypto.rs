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

const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const KEY_LINE: &str = "guidedesk-store-key v1 ";

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
    /// The operating system's random generator failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
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

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<StoreKey, KeyError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?,
        );
        let malformed = |detail: &str| KeyError::Malformed { path: path.to_path_buf(), detail: detail.into() };
        let line = text
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(KEY_LINE.trim_end()).map(str::trim))
            .ok_or_else(|| malformed("no `guidedesk-store-key v1` line"))?;
        if line.len() != 64 {
            return Err(malformed("the key is not 64 hex digits"));
        }
        let mut k = Zeroizing::new([0u8; 32]);
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&line[i * 2..i * 2 + 2], 16).map_err(|_| malformed("the key is not hex"))?;
        }
        Ok(StoreKey(k))
    }

    /// Writes the key to a new file with mode 0600; never replaces an existing file. The key is written to a
    /// temporary file, synced, then linked into place, so a crash never leaves a partial key file (on file systems
    /// without hard links, such as FAT on a USB stick, it is written in place with `create_new`).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
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
    blind: Zeroizing<[u8; 32]>,
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
        let mut m = <HmacSha256 as Mac>::new_from_slice(self.blind.as_ref()).unwrap_or_else(|_| unreachable_hmac());
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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
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
