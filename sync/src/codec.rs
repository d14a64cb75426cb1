//! Encoding of values to bytes and back.
//!
//! Every encoded value starts with one format-version byte ([`FORMAT_VERSION`]) followed by a bincode 2 (serde,
//! standard configuration) payload. The byte lets a reader refuse data written in a format it does not understand
//! instead of misreading it. Field order is part of the format: reordering or inserting fields in an encoded struct
//! requires bumping the version (or a schema migration in the application that owns the struct).
//!
//! Decoding is strict: an empty input, an unknown version byte, a malformed payload, a payload larger than
//! [`MAX_DECODE_BYTES`] and trailing bytes after the value are all errors, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format version written by this build.
pub const FORMAT_VERSION: u8 = 1;

/// Upper bound on the bytes a single decode may allocate, so hostile input cannot exhaust memory.
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

/// Why bytes could not be turned into a value (or a value into bytes).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The input had no bytes at all.
    #[error("encoded value is empty")]
    Empty,
    /// The leading format byte is not one this build reads.
    #[error("unsupported encoding format version {found} (this build reads version {supported})")]
    UnsupportedFormat {
        /// The version byte found in the input.
        found: u8,
        /// The version this build writes and reads.
        supported: u8,
    },
    /// The payload does not decode into the expected type.
    #[error("malformed encoded value: {0}")]
    Malformed(String),
    /// The value decoded but bytes were left over, so the input is not exactly one value.
    #[error("encoded value has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// The value could not be encoded.
    #[error("value cannot be encoded: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// Encodes `value` as the format byte followed by its bincode payload.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, &mut out, config()).map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedFormat { found: version, supported: FORMAT_VERSION });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(payload, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != payload.len() {
        return Err(CodecError::TrailingBytes(payload.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq, Clone)]
    struct Sample {
        id: u128,
        name: String,
        tags: Vec<String>,
        score: Option<i32>,
    }

    #[test]
    fn round_trip() {
        let s = Sample { id: 7, name: "张三".into(), tags: vec!["轮椅".into()], score: Some(-3) };
        let bytes = encode(&s).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), s);
    }

    #[test]
    fn refuses_empty_unknown_version_trailing_and_garbage() {
        assert_eq!(decode::<Sample>(&[]), Err(CodecError::Empty));
        let mut bytes = encode(&Sample { id: 1, name: "a".into(), tags: vec![], score: None }).unwrap();
        bytes[0] = 99;
        assert_eq!(decode::<Sample>(&bytes), Err(CodecError::UnsupportedFormat { found: 99, supported: 1 }));
        bytes[0] = FORMAT_VERSION;
        bytes.push(0);
        assert_eq!(decode::<Sample>(&bytes), Err(CodecError::TrailingBytes(1)));
        assert!(matches!(decode::<Sample>(&[FORMAT_VERSION, 0xff, 0xff]), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A string length prefix claiming ~2^64 bytes.
        let bytes = [FORMAT_VERSION, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<Sample>(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn any_value_round_trips(id in any::<u128>(), name in ".*", tags in proptest::collection::vec(".*", 0..4),
                                 score in any::<Option<i32>>()) {
            let s = Sample { id, name, tags, score };
            prop_assert_eq!(decode::<Sample>(&encode(&s).unwrap()).unwrap(), s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<Sample>(&bytes);
        }
    }
}
