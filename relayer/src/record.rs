//! The stored form of a [`PendingOp`]: a compact binary record.
//!
//! An operation is rewritten at every transition and read back by every
//! pass, and its metadata (a Merkle proof and a threshold of signatures,
//! about 1.3 kB for a MerkleRoot multisig) dominated the JSON form the
//! store used first: written as hex, parsed whole to learn five fields.
//! The binary record is about half the size and its placement (what the
//! `queue` index is keyed by) sits at fixed offsets, read without decoding
//! the rest. Records are written without metadata ([`encode`]; the queue
//! keeps a submit-stage message's metadata in memory), so a record is about
//! 250 bytes; the field stays, and a record written with metadata by an
//! earlier relayer is still read.
//!
//! Layout (integers big-endian; `opt<T>` is a presence byte 0 or 1, then `T`
//! when 1; `bytes` is a be32 length, then the bytes):
//!
//! | offset | field |
//! |---|---|
//! | 0 | version, [`VERSION`] |
//! | 1 | destination u32 |
//! | 5 | stage tag u8 |
//! | 6 | next attempt u64 (unix ms) |
//! | 14 | origin u32 |
//! | 18 | nonce u32 |
//! | 22 | id (32 bytes), retries u32, created u64, gas used u64, batchable u8, reason `opt<u8>`, gas limit `opt<u64>`, ISM `opt<20 bytes>`, leaf index `opt<u32>`, transaction hash `opt<32 bytes>`, submitted block `opt<u64>`, message `bytes`, metadata `opt<bytes>`, detail `opt<bytes>` (UTF-8) |
//!
//! A record that starts with `{` is the earlier JSON form and is still
//! read, so a queue written by an earlier relayer resumes as it was; it is
//! rewritten in binary at its next transition.

use alloy::primitives::{Address, B256, Bytes};

use crate::op::{PendingOp, Reason, Stage};

/// The first byte of a binary record.
pub const VERSION: u8 = 1;

/// Where an operation sits in the `queue` index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Placement {
    /// Destination domain.
    pub destination: u32,
    /// Stage.
    pub stage: Stage,
    /// Next attempt, unix ms.
    pub next_attempt_ms: u64,
    /// Origin domain.
    pub origin: u32,
    /// Message nonce.
    pub nonce: u32,
}

impl From<&PendingOp> for Placement {
    fn from(op: &PendingOp) -> Self {
        Self {
            destination: op.destination,
            stage: op.stage,
            next_attempt_ms: op.next_attempt_ms,
            origin: op.origin,
            nonce: op.nonce,
        }
    }
}

/// The binary record of `op`, its metadata written absent: metadata never
/// outlives the process that built it ([`crate::queue`]).
pub fn encode(op: &PendingOp) -> Vec<u8> {
    encode_with(op, None)
}

/// The record with its metadata, as relayers before the queue kept it in
/// memory wrote it (what [`decode`] must still read).
#[cfg(test)]
fn encode_with_metadata(op: &PendingOp) -> Vec<u8> {
    encode_with(op, op.metadata.as_ref().map(|m| &m[..]))
}

fn encode_with(op: &PendingOp, metadata: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        160 + op.message.len()
            + metadata.map_or(0, <[u8]>::len)
            + op.detail.as_ref().map_or(0, String::len),
    );
    out.push(VERSION);
    out.extend_from_slice(&op.destination.to_be_bytes());
    out.push(op.stage.tag());
    out.extend_from_slice(&op.next_attempt_ms.to_be_bytes());
    out.extend_from_slice(&op.origin.to_be_bytes());
    out.extend_from_slice(&op.nonce.to_be_bytes());
    out.extend_from_slice(op.id.as_slice());
    out.extend_from_slice(&op.retries.to_be_bytes());
    out.extend_from_slice(&op.created_ms.to_be_bytes());
    out.extend_from_slice(&op.gas_used.to_be_bytes());
    out.push(u8::from(op.batchable));
    put_opt(&mut out, op.reason.map(|r| [r.tag()]));
    put_opt(&mut out, op.gas_limit.map(u64::to_be_bytes));
    put_opt(&mut out, op.ism.map(|a| a.0.0));
    put_opt(&mut out, op.leaf_index.map(u32::to_be_bytes));
    put_opt(&mut out, op.tx_hash.map(|h| h.0));
    put_opt(&mut out, op.submitted_block.map(u64::to_be_bytes));
    put_bytes(&mut out, &op.message);
    put_opt_bytes(&mut out, metadata);
    put_opt_bytes(&mut out, op.detail.as_deref().map(str::as_bytes));
    out
}

fn put_opt_bytes(out: &mut Vec<u8>, value: Option<&[u8]>) {
    out.push(u8::from(value.is_some()));
    if let Some(bytes) = value {
        put_bytes(out, bytes);
    }
}

fn put_opt<const N: usize>(out: &mut Vec<u8>, value: Option<[u8; N]>) {
    match value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v);
        }
        None => out.push(0),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Messages and metadata are far below 4 GiB: the transaction that
    // carries them is capped by the block gas limit.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Why a stored record could not be read.
pub type DecodeError = String;

/// The placement of a stored record, read from its fixed offsets (or from
/// the earlier JSON form).
pub fn placement(bytes: &[u8]) -> Result<Placement, DecodeError> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| format!("JSON record: {e}"));
    }
    let mut r = Reader::new(bytes)?;
    r.placement()
}

/// The operation of a stored record (binary, or the earlier JSON form).
pub fn decode(bytes: &[u8]) -> Result<PendingOp, DecodeError> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| format!("JSON record: {e}"));
    }
    let mut r = Reader::new(bytes)?;
    let p = r.placement()?;
    let op = PendingOp {
        destination: p.destination,
        stage: p.stage,
        next_attempt_ms: p.next_attempt_ms,
        origin: p.origin,
        nonce: p.nonce,
        id: B256::from(r.array::<32>("id")?),
        retries: r.u32("retries")?,
        created_ms: r.u64("created")?,
        gas_used: r.u64("gas used")?,
        batchable: r.flag("batchable")?,
        reason: r
            .opt::<1>("reason")?
            .map(|[t]| Reason::from_tag(t).ok_or_else(|| format!("unknown reason tag {t}")))
            .transpose()?,
        gas_limit: r.opt::<8>("gas limit")?.map(u64::from_be_bytes),
        ism: r.opt::<20>("ism")?.map(Address::from),
        leaf_index: r.opt::<4>("leaf index")?.map(u32::from_be_bytes),
        tx_hash: r.opt::<32>("transaction hash")?.map(B256::from),
        submitted_block: r.opt::<8>("submitted block")?.map(u64::from_be_bytes),
        message: Bytes::copy_from_slice(r.bytes("message")?),
        metadata: r.opt_bytes("metadata")?.map(Bytes::copy_from_slice),
        detail: r
            .opt_bytes("detail")?
            .map(|raw| {
                String::from_utf8(raw.to_vec()).map_err(|_| "detail is not UTF-8".to_owned())
            })
            .transpose()?,
    };
    if !r.rest.is_empty() {
        return Err(format!("{} bytes after the record", r.rest.len()));
    }
    Ok(op)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        match bytes.split_first() {
            Some((&VERSION, rest)) => Ok(Self { rest }),
            Some((v, _)) => Err(format!("unknown record version {v}")),
            None => Err("empty record".into()),
        }
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(format!("record ends inside {field}"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u32(&mut self, field: &str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn u64(&mut self, field: &str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    fn flag(&mut self, field: &str) -> Result<bool, DecodeError> {
        match self.array::<1>(field)? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(format!("{field}: flag byte {b}")),
        }
    }

    fn opt<const N: usize>(&mut self, field: &str) -> Result<Option<[u8; N]>, DecodeError> {
        if self.flag(field)? { self.array(field).map(Some) } else { Ok(None) }
    }

    fn bytes(&mut self, field: &str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }

    fn opt_bytes(&mut self, field: &str) -> Result<Option<&'a [u8]>, DecodeError> {
        if self.flag(field)? { self.bytes(field).map(Some) } else { Ok(None) }
    }

    fn placement(&mut self) -> Result<Placement, DecodeError> {
        let destination = self.u32("destination")?;
        let [tag] = self.array::<1>("stage")?;
        let stage = Stage::from_tag(tag).ok_or_else(|| format!("unknown stage tag {tag}"))?;
        Ok(Placement {
            destination,
            stage,
            next_attempt_ms: self.u64("next attempt")?,
            origin: self.u32("origin")?,
            nonce: self.u32("nonce")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalayer_protocol::Message;

    fn bare() -> PendingOp {
        PendingOp::new(&Message {
            version: 3,
            nonce: 41,
            origin: 7,
            sender: B256::repeat_byte(1),
            destination: 9,
            recipient: B256::repeat_byte(2),
            body: Bytes::from(vec![0xab; 32]),
        })
    }

    fn full() -> PendingOp {
        PendingOp {
            stage: Stage::Confirm,
            retries: 3,
            reason: Some(Reason::RevertedOrReorged),
            detail: Some("not delivered at final block 12: réorg".into()),
            metadata: Some(Bytes::from(vec![0x5a; 1_300])),
            gas_limit: Some(123_456),
            ism: Some(Address::repeat_byte(0x33)),
            batchable: true,
            leaf_index: Some(40),
            tx_hash: Some(B256::repeat_byte(0x44)),
            submitted_block: Some(u64::MAX - 1),
            gas_used: 98_765,
            ..bare()
        }
    }

    #[test]
    fn every_field_comes_back_and_the_placement_is_read_alone() {
        for op in [bare(), full()] {
            let record = encode_with_metadata(&op);
            assert_eq!(decode(&record).unwrap(), op);
            assert_eq!(placement(&record).unwrap(), Placement::from(&op));
        }
        // Every reason and stage survives.
        for reason in Reason::ALL {
            let op = PendingOp { reason: Some(reason), ..full() };
            assert_eq!(decode(&encode_with_metadata(&op)).unwrap().reason, Some(reason));
        }
        for stage in Stage::ALL {
            let op = PendingOp { stage, ..full() };
            assert_eq!(placement(&encode_with_metadata(&op)).unwrap().stage, stage);
        }
    }

    #[test]
    fn the_binary_record_is_much_smaller_than_the_json_one() {
        let op = full();
        let (binary, json) =
            (encode_with_metadata(&op).len(), serde_json::to_vec(&op).unwrap().len());
        assert!(binary * 2 < json, "binary {binary} bytes, JSON {json}");
    }

    #[test]
    fn a_record_written_as_json_by_an_earlier_relayer_is_still_read() {
        let op = full();
        let json = serde_json::to_vec(&op).unwrap();
        assert_eq!(decode(&json).unwrap(), op);
        assert_eq!(placement(&json).unwrap(), Placement::from(&op));
    }

    #[test]
    fn a_cut_or_damaged_record_is_refused_with_what_was_wrong() {
        let record = encode_with_metadata(&full());
        for len in 0..record.len() {
            assert!(decode(&record[..len]).is_err(), "cut at {len} of {}", record.len());
        }
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err(), "1 bytes after the record");
        let mut version = record.clone();
        version[0] = 9;
        assert_eq!(decode(&version).unwrap_err(), "unknown record version 9");
        let mut stage = record.clone();
        stage[5] = 200;
        assert_eq!(placement(&stage).unwrap_err(), "unknown stage tag 200");
        let mut flag = record;
        flag[22 + 32 + 4 + 8 + 8] = 2;
        assert_eq!(decode(&flag).unwrap_err(), "batchable: flag byte 2");
    }
}
