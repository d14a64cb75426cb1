//! The operation envelope: one replicated change as an outbox holds it and a push batch carries it.
//!
//! Every local write of a record produces exactly one [`Op`] with the next gap-free sequence number of its device.
//! The payload is the whole record state after the write (state-based replication), so applying the same op twice,
//! or two ops in either order, converges once the application merges records field by field on their [`Hlc`] stamps.

use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;

/// Identifies a kiosk (an installation of the kiosk store). Made on the device when its store is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceId(pub u128);

impl DeviceId {
    /// The 64-bit node number used in HLC stamps (the low half of the id; the high half of a UUIDv7 is its time).
    pub fn node(self) -> u64 {
        self.0 as u64
    }
}

/// A record's identity across the system: an application-defined kind code and a 128-bit id (a UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    /// Application-defined record kind.
    pub kind: u16,
    /// The record's id.
    pub id: u128,
}

/// One replicated change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Per-device sequence number: 1, 2, 3, … with no gaps and no reuse.
    pub seq: u64,
    /// Which record changed.
    pub key: RecordKey,
    /// The application's schema version of `payload`.
    pub schema: u16,
    /// The HLC stamp of the write that produced this op.
    pub stamp: Hlc,
    /// The encoded record state after the write.
    pub payload: Vec<u8>,
}

/// Why a sequence of ops is not a valid push batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The batch holds no ops.
    #[error("batch is empty")]
    Empty,
    /// Sequence numbers are not consecutive.
    #[error("batch is not contiguous: expected seq {expected}, found {found}")]
    Gap {
        /// The sequence number that should have come next.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
}

/// Checks that `ops` carry consecutive sequence numbers, and returns the inclusive range they cover.
pub fn contiguous_range(ops: &[Op]) -> Result<(u64, u64), BatchError> {
    let first = ops.first().ok_or(BatchError::Empty)?.seq;
    let mut expected = first;
    for op in ops {
        if op.seq != expected {
            return Err(BatchError::Gap { expected, found: op.seq });
        }
        expected += 1;
    }
    Ok((first, expected - 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codec;

    fn op(seq: u64) -> Op {
        Op { seq, key: RecordKey { kind: 1, id: u128::from(seq) }, schema: 1, stamp: Hlc::ZERO, payload: vec![1, 2] }
    }

    #[test]
    fn contiguous_batches() {
        assert_eq!(contiguous_range(&[op(4), op(5), op(6)]), Ok((4, 6)));
        assert_eq!(contiguous_range(&[]), Err(BatchError::Empty));
        assert_eq!(contiguous_range(&[op(4), op(6)]), Err(BatchError::Gap { expected: 5, found: 6 }));
    }

    #[test]
    fn op_round_trips_through_codec() {
        let o = op(42);
        assert_eq!(codec::decode::<Op>(&codec::encode(&o).unwrap()).unwrap(), o);
    }
}
