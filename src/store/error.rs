//! Errors of the kiosk store.

use std::path::PathBuf;

use guidedesk_sync::CodecError;

use crate::model::codec::PayloadError;
use crate::model::{RecordId, RecordKind, ValidationErrors};

/// Why the store could not be opened. Opening never replaces or rewrites a file it refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory could not be created or is not a directory.
    #[error("data directory {path} cannot be used: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The data directory is not writable.
    #[error("data directory {path} is read-only: GuideDesk needs to write its store there")]
    ReadOnly {
        /// The directory.
        path: PathBuf,
    },
    /// The file exists but is not a GuideDesk store.
    #[error("{path} is not a GuideDesk store (it was left untouched): {detail}")]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The file is a store but is damaged beyond automatic repair.
    #[error("the store {path} is corrupt (it was left untouched; restore a backup): {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The store was written by a newer GuideDesk.
    #[error(
        "the store {path} was written by a newer GuideDesk (schema {found}; this build reads up to {supported}); \
         install the newer version"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Schema version in the file.
        found: u32,
        /// Highest schema this build reads.
        supported: u32,
    },
    /// Another process has the store open.
    #[error("the store {path} is in use by another GuideDesk process")]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The store is encrypted and its key file is missing.
    #[error(
        "the store {path} is encrypted but its key file {key} is missing; put the key file back (or set \
         GUIDEDESK_KEY_FILE / store.key_file to where it is). The store was left untouched"
    )]
    KeyMissing {
        /// The store file.
        path: PathBuf,
        /// Where the key was looked for.
        key: PathBuf,
    },
    /// The key file holds a different key from the one the store is encrypted with.
    #[error(
        "the key in {key} (id {found:08x}) is not the key the store {path} is encrypted with (id {expected:08x}); \
         the store was left untouched"
    )]
    WrongKey {
        /// The store file.
        path: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Key id of the loaded key.
        found: u32,
        /// Key id the store expects.
        expected: u32,
    },
    /// The key file could not be read or created.
    #[error("cannot use the store key: {0}")]
    Key(#[from] super::crypto::KeyError),
    /// The store could not be read or prepared.
    #[error("cannot open the store {path}: {source}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: Box<StoreError>,
    },
}

/// Why a store operation failed. A failed write changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine failed (I/O error, disk full, …).
    #[error("storage error: {0}")]
    Storage(#[from] redb::Error),
    /// Stored bytes could not be decoded.
    #[error("stored data cannot be decoded: {0}")]
    Codec(#[from] CodecError),
    /// A stored record has a schema version this build cannot read.
    #[error("a stored {kind} record has schema {found}, this build reads {supported}")]
    Schema {
        /// Kind.
        kind: RecordKind,
        /// Schema found.
        found: u16,
        /// Schema supported.
        supported: u16,
    },
    /// Input was invalid; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationErrors),
    /// A record that should exist does not.
    #[error("no {kind} record with id {id}")]
    NotFound {
        /// Kind.
        kind: RecordKind,
        /// Id.
        id: RecordId,
    },
    /// The write contradicts what is stored (e.g. rewriting append-only feedback).
    #[error("refused: {0}")]
    Conflict(String),
    /// An encrypted value could not be decrypted (wrong key, altered or moved data). `place` names the table and key.
    #[error("{place} {problem}")]
    Crypto {
        /// Table and record key, e.g. `rec_arrival:0192…`.
        place: String,
        /// What went wrong.
        problem: String,
    },
    /// The store key could not be read, created or replaced.
    #[error("store key: {0}")]
    Key(#[from] super::crypto::KeyError),
    /// The store's metadata is missing or inconsistent.
    #[error("store metadata is damaged: {0}")]
    Meta(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.into())
            }
        }
    )*};
}
from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, redb::DatabaseError);

/// A payload error becomes the store error it always was, with the same text (`Codec`, `Schema`, `Conflict`).
impl From<PayloadError> for StoreError {
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::Codec(c) => StoreError::Codec(c),
            PayloadError::Schema { kind, found, supported } => StoreError::Schema { kind, found, supported },
            PayloadError::UnknownKind(code) => StoreError::Conflict(format!("unknown record kind code {code}")),
            PayloadError::BadRelayKey => StoreError::Conflict("a relayed record's key is not <kind>:<id>".into()),
            PayloadError::IdMismatch { seq, record, key } => {
                StoreError::Conflict(format!("op {seq} carries record {record} under id {key:x}"))
            }
        }
    }
}
