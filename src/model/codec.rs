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
    /// A relayed change's key is not `<kind code>:<32 hex digits>`.
    #[error("refused: a relayed record's key is not <kind>:<id>")]
    BadRelayKey,
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
        AnyRecord::CallClaim(r) => encode_record(r),
        AnyRecord::Appointment(r) => encode_record(r),
        AnyRecord::ShiftLog(r) => encode_record(r),
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
        RecordKind::CallClaim => AnyRecord::CallClaim(decode_record(bytes)?),
        RecordKind::Appointment => AnyRecord::Appointment(decode_record(bytes)?),
        RecordKind::ShiftLog => AnyRecord::ShiftLog(decode_record(bytes)?),
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
        RecordKind::CallClaim => AnyRecord::CallClaim(codec::decode(&op.payload)?),
        RecordKind::Appointment => AnyRecord::Appointment(codec::decode(&op.payload)?),
        RecordKind::ShiftLog => AnyRecord::ShiftLog(codec::decode(&op.payload)?),
    };
    if rec.id().as_u128() != op.key.id {
        return Err(PayloadError::IdMismatch { seq: op.seq, record: rec.id(), key: op.key.id });
    }
    Ok(rec)
}

/// The stream of records HQ relays to the devices of a site (see [`Relayed`]).
pub const RECORDS_STREAM: &str = "records";

/// A record as HQ relays it to the devices of its site: the value of a change of the [`RECORDS_STREAM`] stream.
/// The change's key is [`relay_key`]. Audit entries are never relayed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relayed {
    /// The device that first sent the record (its origin).
    pub origin: u128,
    /// That device's desk code.
    pub origin_desk: String,
    /// The desk whose change HQ merged last (where the record was last changed).
    pub changed_desk: String,
    /// The highest op stamp HQ has merged into the record: the receiving device's clock observes it, so its own
    /// later edits order after every edit it has seen.
    pub stamp: guidedesk_sync::Hlc,
    /// The record's schema version.
    pub schema: u16,
    /// The merged record, codec bytes (as an op payload).
    pub payload: Vec<u8>,
}

/// The key of a relayed record's change: `<kind code>:<id as 32 hex digits>`.
pub fn relay_key(kind: RecordKind, id: u128) -> String {
    format!("{}:{id:032x}", kind.code())
}

/// The kind and id named by a [`relay_key`].
pub fn parse_relay_key(key: &str) -> Option<(RecordKind, u128)> {
    let (k, id) = key.split_once(':')?;
    let kind = RecordKind::from_code(k.parse().ok()?)?;
    if id.len() != 32 {
        return None;
    }
    Some((kind, u128::from_str_radix(id, 16).ok()?))
}

impl Relayed {
    /// Wraps a merged record for relaying.
    pub fn of(
        rec: &AnyRecord,
        origin: (u128, &str),
        changed_desk: &str,
        stamp: guidedesk_sync::Hlc,
    ) -> Result<Relayed, PayloadError> {
        let (_, payload) = encode_any(rec)?;
        Ok(Relayed {
            origin: origin.0,
            origin_desk: origin.1.to_string(),
            changed_desk: changed_desk.to_string(),
            stamp,
            schema: RECORD_SCHEMA,
            payload,
        })
    }

    /// Decodes the record of a relayed change whose key is `key`, checking its kind, schema and id like an op's.
    pub fn open(&self, key: &str) -> Result<AnyRecord, PayloadError> {
        let (kind, id) = parse_relay_key(key).ok_or(PayloadError::BadRelayKey)?;
        let op = Op {
            seq: 0,
            key: guidedesk_sync::RecordKey { kind: kind.code(), id },
            schema: self.schema,
            stamp: self.stamp,
            payload: self.payload.clone(),
        };
        decode_op_payload(&op)
    }
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

    #[test]
    fn relay_keys_round_trip_and_foreign_keys_are_refused() {
        let k = relay_key(RecordKind::Case, 0xabc);
        assert_eq!(k, format!("{}:00000000000000000000000000000abc", RecordKind::Case.code()));
        assert_eq!(parse_relay_key(&k), Some((RecordKind::Case, 0xabc)));
        for bad in ["", "x:1", "99:00000000000000000000000000000abc", "1:abc", "1:zz000000000000000000000000000abc"] {
            assert_eq!(parse_relay_key(bad), None, "{bad}");
        }
    }
}
