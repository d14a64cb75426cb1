//! The record payload codec: a record as the bytes the kiosk stores (`[schema u16 LE][codec bytes]`) and as the
//! payload of a sync op (codec bytes, schema in the op), and back again.
//!
//! Pure: no keys, no I/O. The byte format of a value is [`guidedesk_sync::codec`]'s; sealing the stored bytes with
//! the store key, and opening them, is `store::crypto`'s job, outside this module. The kiosk store and HQ both decode
//! op payloads here. Errors are [`PayloadError`]; the store turns them into its own `StoreError` with the same text.

use guidedesk_sync::{CodecError, Op, codec};

use super::{AnyRecord, RECORD_SCHEMA, Record, RecordId, RecordKind};

/// Why a record or op payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The bytes are not a valid encoding (empty, truncated, malformed, trailing bytes), or a value could not be
    /// encoded.
    #[error("stored data cannot be decoded: {0}")]
    Codec(#[from] CodecError),
    /// The record was written with a schema version this build cannot read.
    #[error("a stored {kind} record has schema {found}, this build reads {supported}")]
    Schema {
        /// Kind.
        kind: RecordKind,
        /// Schema found.
        found: u16,
        /// Schema supported.
        supported: u16,
    },
    /// The op names a record kind this build does not know.
    #[error("refused: unknown record kind code {0}")]
    UnknownKind(u16),
    /// The op's payload is a record whose id is not the one in the op's key.
    #[error("refused: op {seq} carries record {record} under id {key:x}")]
    IdMismatch {
        /// The op's sequence number.
        seq: u64,
        /// The id of the record in the payload.
        record: RecordId,
        /// The id in the op's key.
        key: u128,
    },
}

/// Encodes a record for storage: returns (the stored bytes, schema prefix included; the op payload, without it).
pub fn encode_record<R: Record>(rec: &R) -> Result<(Vec<u8>, Vec<u8>), PayloadError> {
    let payload = codec::encode(rec)?;
    let mut stored = Vec::with_capacity(payload.len() + 2);
    stored.extend_from_slice(&RECORD_SCHEMA.to_le_bytes());
    stored.extend_from_slice(&payload);
    Ok((stored, payload))
}

/// [`encode_record`] for a record of any kind.
pub fn encode_any(rec: &AnyRecord) -> Result<(Vec<u8>, Vec<u8>), PayloadError> {
    match rec {
        AnyRecord::Arrival(r) => encode_record(r),
        AnyRecord::Consultation(r) => encode_record(r),
        AnyRecord::Feedback(r) => encode_record(r),
        AnyRecord::Case(r) => encode_record(r),
        AnyRecord::FollowupTask(r) => encode_record(r),
        AnyRecord::CallAttempt(r) => encode_record(r),
        AnyRecord::Audit(r) => encode_record(r),
    }
}

/// Checks the schema prefix of stored bytes of a kind and returns the codec bytes after it.
pub fn split_schema(kind: RecordKind, bytes: &[u8]) -> Result<&[u8], PayloadError> {
    if bytes.len() < 2 {
        return Err(PayloadError::Codec(CodecError::Empty));
    }
    let schema = u16::from_le_bytes([bytes[0], bytes[1]]);
    if schema != RECORD_SCHEMA {
        return Err(PayloadError::Schema { kind, found: schema, supported: RECORD_SCHEMA });
    }
    Ok(&bytes[2..])
}

/// Decodes stored bytes (schema prefix included) into a record.
pub fn decode_record<R: Record>(bytes: &[u8]) -> Result<R, PayloadError> {
    Ok(codec::decode::<R>(split_schema(R::KIND, bytes)?)?)
}

/// Decodes stored bytes (schema prefix included) of a kind.
pub fn decode_any(kind: RecordKind, bytes: &[u8]) -> Result<AnyRecord, PayloadError> {
    Ok(match kind {
        RecordKind::Arrival => AnyRecord::Arrival(decode_record(bytes)?),
        RecordKind::Consultation => AnyRecord::Consultation(decode_record(bytes)?),
        RecordKind::Feedback => AnyRecord::Feedback(decode_record(bytes)?),
        RecordKind::Case => AnyRecord::Case(decode_record(bytes)?),
        RecordKind::FollowupTask => AnyRecord::FollowupTask(decode_record(bytes)?),
        RecordKind::CallAttempt => AnyRecord::CallAttempt(decode_record(bytes)?),
        RecordKind::Audit => AnyRecord::Audit(decode_record(bytes)?),
    })
}

/// Decodes an op payload (sync) into a record of the op's kind, checking its schema and that the record's id is
/// the op's.
pub fn decode_op_payload(op: &Op) -> Result<AnyRecord, PayloadError> {
    let kind = RecordKind::from_code(op.key.kind).ok_or(PayloadError::UnknownKind(op.key.kind))?;
    if op.schema != RECORD_SCHEMA {
        return Err(PayloadError::Schema { kind, found: op.schema, supported: RECORD_SCHEMA });
    }
    let rec = match kind {
        RecordKind::Arrival => AnyRecord::Arrival(codec::decode(&op.payload)?),
        RecordKind::Consultation => AnyRecord::Consultation(codec::decode(&op.payload)?),
        RecordKind::Feedback => AnyRecord::Feedback(codec::decode(&op.payload)?),
        RecordKind::Case => AnyRecord::Case(codec::decode(&op.payload)?),
        RecordKind::FollowupTask => AnyRecord::FollowupTask(codec::decode(&op.payload)?),
        RecordKind::CallAttempt => AnyRecord::CallAttempt(codec::decode(&op.payload)?),
        RecordKind::Audit => AnyRecord::Audit(codec::decode(&op.payload)?),
    };
    if rec.id().as_u128() != op.key.id {
        return Err(PayloadError::IdMismatch { seq: op.seq, record: rec.id(), key: op.key.id });
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn short_and_foreign_bytes_are_errors_with_the_store_messages() {
        let e = split_schema(RecordKind::Case, &[1]).unwrap_err();
        assert!(matches!(e, PayloadError::Codec(CodecError::Empty)));
        assert!(e.to_string().starts_with("stored data cannot be decoded: "), "{e}");
        let e = split_schema(RecordKind::Case, &[0xff, 0xff, 0]).unwrap_err();
        assert_eq!(e.to_string(), format!("a stored case record has schema 65535, this build reads {RECORD_SCHEMA}"));
        let e = PayloadError::UnknownKind(99);
        assert_eq!(e.to_string(), "refused: unknown record kind code 99");
    }
}
