//! The stored form of a [`PendingOp`]: a compact binary record.
//!
//! An operation is rewritten at every transition and read back by every
//! pass, and its metadata (a Merkle proof and a threshold of signatures,
//! about 1.3 kB for a MerkleRoot multisig) dominated the JSON form the
//! store used first: written as hex, parsed whole to learn five fields.
//! The binary record is about half the size and its placement (what the
//! `queue` index is keyed by) sits at fixed offsets, read without decoding
//! the rest. Records are written without metadata ([`encode_new`], [`encode_moved`]; the queue
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
//! Version 2 records end with the operation's history, so a move writes
//! its history line in the same sled write as the move itself (a history
//! tree of its own cost a sled insert per line, a sixth of the relayer's
//! CPU): be32 lines dropped, be32 line count, then each line as be64 time
//! (unix ms), stage tag u8, reason `opt<u8>`, transaction hash
//! `opt<32 bytes>`, detail `bytes`. At most [`MAX_HISTORY`] lines are
//! kept: the first (when the message was loaded) and the newest, with a
//! count of those dropped between them. A version 1 record has no history
//! section (its lines are in the queue's older `history` tree).
//!
//! A record that starts with `{` is the earlier JSON form and is still
//! read, so a queue written by an earlier relayer resumes as it was; it is
//! rewritten in binary at its next transition.

use alloy::primitives::{Address, B256, Bytes};

use crate::op::{HistoryEntry, PendingOp, Reason, Stage};

/// The first byte of a binary record.
pub const VERSION: u8 = 2;
/// The first byte of a record without a history section.
const VERSION_1: u8 = 1;
/// History lines a record keeps (the first and the newest).
pub const MAX_HISTORY: u32 = 64;

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

/// The record of a new operation, `line` its first history line; its
/// metadata is written absent: metadata never outlives the process that
/// built it ([`crate::queue`]).
pub fn encode_new(op: &PendingOp, line: &HistoryEntry) -> Vec<u8> {
    let mut out = encode_with(op, None);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    put_line(&mut out, line);
    out
}

/// The record of `op` after a move from the `stored` record: its history
/// is the stored one with `line` appended. A stored history that cannot be
/// read whole is counted as dropped, so it never holds a move back.
pub fn encode_moved(op: &PendingOp, stored: &[u8], line: &HistoryEntry) -> Vec<u8> {
    let (dropped, count, lines) = stored_lines(stored);
    if count >= MAX_HISTORY {
        // Keep the first line; drop the oldest after it. Both were
        // checked by `stored_lines`.
        let mut r = Reader { version: VERSION, rest: lines };
        let first = r.line_parts().map(|_| lines.len() - r.rest.len()).unwrap_or(0);
        let second = r.line_parts().map(|_| lines.len() - r.rest.len()).unwrap_or(first);
        let mut out = encode_with(op, None);
        out.extend_from_slice(&dropped.saturating_add(1).to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&lines[..first]);
        out.extend_from_slice(&lines[second..]);
        put_line(&mut out, line);
        return out;
    }
    let mut out = encode_with(op, None);
    out.extend_from_slice(&dropped.to_be_bytes());
    out.extend_from_slice(&(count + 1).to_be_bytes());
    out.extend_from_slice(lines);
    put_line(&mut out, line);
    out
}

/// A stored record's history: lines dropped, line count and the lines'
/// bytes, each line checked. A history that does not read whole is
/// returned as that many lines dropped and none kept; a version 1, JSON or
/// damaged record has none.
fn stored_lines(stored: &[u8]) -> (u32, u32, &[u8]) {
    let Ok(Some(mut r)) = history_section(stored) else { return (0, 0, &[]) };
    let (Ok(dropped), Ok(count)) = (r.u32("lines dropped"), r.u32("line count")) else {
        return (0, 0, &[]);
    };
    let lines = r.rest;
    let mut check = Reader { version: VERSION, rest: lines };
    let whole = (0..count).all(|_| check.line_parts().is_ok()) && check.rest.is_empty();
    if whole { (dropped, count, lines) } else { (dropped.saturating_add(count), 0, &[]) }
}

/// The history a record holds: how many lines were dropped after the
/// first, and the lines kept, oldest first (none for an earlier record).
pub fn history(bytes: &[u8]) -> Result<(u32, Vec<HistoryEntry>), DecodeError> {
    let Some(mut r) = history_section(bytes)? else { return Ok((0, Vec::new())) };
    let dropped = r.u32("lines dropped")?;
    let count = r.u32("line count")?;
    // A line is at least 16 bytes: a count beyond that is damage, not a
    // reason to reserve memory.
    if count as usize > r.rest.len() / 16 {
        return Err(format!("{count} history lines in {} bytes", r.rest.len()));
    }
    let mut lines = Vec::with_capacity(count as usize);
    for _ in 0..count {
        lines.push(r.line()?);
    }
    if !r.rest.is_empty() {
        return Err(format!("{} bytes after the history", r.rest.len()));
    }
    Ok((dropped, lines))
}

/// The record with its metadata, as relayers before the queue kept it in
/// memory wrote it (what [`decode`] must still read).
#[cfg(test)]
fn encode_with_metadata(op: &PendingOp) -> Vec<u8> {
    let mut out = encode_with(op, op.metadata.as_ref().map(|m| &m[..]));
    out[0] = VERSION_1;
    out
}

fn put_line(out: &mut Vec<u8>, line: &HistoryEntry) {
    out.extend_from_slice(&line.at_ms.to_be_bytes());
    out.push(line.stage.tag());
    put_opt(out, line.reason.map(|r| [r.tag()]));
    put_opt(out, line.tx_hash.map(|h| h.0));
    put_bytes(out, line.detail.as_bytes());
}

/// The history section of a version 2 record, after its fields; `None`
/// for a version 1 or JSON record.
fn history_section(bytes: &[u8]) -> Result<Option<Reader<'_>>, DecodeError> {
    if bytes.first() == Some(&b'{') {
        return Ok(None);
    }
    let mut r = Reader::new(bytes)?;
    let version = r.version;
    fields(&mut r)?;
    Ok((version == VERSION).then_some(r))
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
    let op = fields(&mut r)?;
    if r.version == VERSION {
        // The history section: read with [`history`].
        return Ok(op);
    }
    if !r.rest.is_empty() {
        return Err(format!("{} bytes after the record", r.rest.len()));
    }
    Ok(op)
}

/// The operation's fields, leaving `r` at what follows them.
fn fields(r: &mut Reader<'_>) -> Result<PendingOp, DecodeError> {
    let p = r.placement()?;
    Ok(PendingOp {
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
    })
}

struct Reader<'a> {
    version: u8,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        match bytes.split_first() {
            Some((&version, rest)) if version == VERSION || version == VERSION_1 => {
                Ok(Self { version, rest })
            }
            Some((v, _)) => Err(format!("unknown record version {v}")),
            None => Err("empty record".into()),
        }
    }

    fn line(&mut self) -> Result<HistoryEntry, DecodeError> {
        let (at_ms, stage, reason, tx_hash, detail) = self.line_parts()?;
        Ok(HistoryEntry { at_ms, stage, reason, detail: detail.to_owned(), tx_hash })
    }

    /// A history line's fields, its detail borrowed.
    #[allow(clippy::type_complexity)]
    fn line_parts(
        &mut self,
    ) -> Result<(u64, Stage, Option<Reason>, Option<B256>, &'a str), DecodeError> {
        let at_ms = self.u64("history time")?;
        let [tag] = self.array::<1>("history stage")?;
        let stage =
            Stage::from_tag(tag).ok_or_else(|| format!("unknown history stage tag {tag}"))?;
        let reason = self
            .opt::<1>("history reason")?
            .map(|[t]| Reason::from_tag(t).ok_or_else(|| format!("unknown reason tag {t}")))
            .transpose()?;
        let tx_hash = self.opt::<32>("history transaction")?.map(B256::from);
        let detail = std::str::from_utf8(self.bytes("history detail")?)
            .map_err(|_| "history detail is not UTF-8".to_owned())?;
        Ok((at_ms, stage, reason, tx_hash, detail))
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

    fn line(n: u64, stage: Stage) -> HistoryEntry {
        HistoryEntry {
            at_ms: 1_000 + n,
            stage,
            reason: n.is_multiple_of(3).then_some(Reason::ALL[n as usize % Reason::ALL.len()]),
            detail: format!("move {n}"),
            tx_hash: n.is_multiple_of(2).then(|| B256::repeat_byte(n as u8)),
        }
    }

    #[test]
    fn each_move_appends_its_line_to_the_record() {
        let op = full();
        let mut record = encode_new(&op, &line(0, Stage::Prepare));
        let mut expected = vec![line(0, Stage::Prepare)];
        for n in 1..5 {
            let moved = PendingOp { stage: Stage::ALL[n as usize % 3], ..op.clone() };
            record = encode_moved(&moved, &record, &line(n, moved.stage));
            expected.push(line(n, moved.stage));
            assert_eq!(placement(&record).unwrap(), Placement::from(&moved));
            assert_eq!(decode(&record).unwrap(), PendingOp { metadata: None, ..moved });
        }
        assert_eq!(history(&record).unwrap(), (0, expected));
    }

    #[test]
    fn a_long_history_keeps_the_first_and_the_newest_lines() {
        let op = bare();
        let mut record = encode_new(&op, &line(0, Stage::Prepare));
        let moves = u64::from(MAX_HISTORY) + 10;
        for n in 1..=moves {
            record = encode_moved(&op, &record, &line(n, Stage::Prepare));
        }
        let (dropped, lines) = history(&record).unwrap();
        assert_eq!(dropped, 11);
        assert_eq!(lines.len(), MAX_HISTORY as usize);
        assert_eq!(lines[0], line(0, Stage::Prepare));
        assert_eq!(lines[1], line(12, Stage::Prepare));
        assert_eq!(lines.last().unwrap(), &line(moves, Stage::Prepare));
    }

    #[test]
    fn an_earlier_record_has_no_history_and_gains_one_at_its_next_move() {
        for earlier in [encode_with_metadata(&full()), serde_json::to_vec(&full()).unwrap()] {
            assert_eq!(history(&earlier).unwrap(), (0, vec![]));
            let moved = encode_moved(&full(), &earlier, &line(7, Stage::Confirm));
            assert_eq!(moved[0], VERSION);
            assert_eq!(history(&moved).unwrap(), (0, vec![line(7, Stage::Confirm)]));
        }
    }

    #[test]
    fn a_damaged_history_is_refused_with_what_was_wrong() {
        let record = encode_new(&bare(), &line(0, Stage::Prepare));
        let at = record.len() - (8 + 1 + 1 + 1 + 33 + 4 + "move 0".len()) - 4;
        let mut count = record.clone();
        count[at..at + 4].copy_from_slice(&1_000_000u32.to_be_bytes());
        assert!(history(&count).unwrap_err().contains("1000000 history lines"));
        let mut stage = record.clone();
        stage[at + 4 + 8] = 200;
        assert_eq!(history(&stage).unwrap_err(), "unknown history stage tag 200");
        // The next move counts the damaged line as dropped and goes on.
        let moved = encode_moved(&bare(), &stage, &line(1, Stage::Submit));
        assert_eq!(history(&moved).unwrap(), (1, vec![line(1, Stage::Submit)]));
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(history(&longer).unwrap_err(), "1 bytes after the history");
        for len in record.len() - 40..record.len() {
            assert!(history(&record[..len]).is_err(), "cut at {len} of {}", record.len());
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
