//! The body file: each block's transactions, receipts and change set,
//! appended to one file beside the sled tree, which keeps where each block's
//! parts lie.
//!
//! Why not in sled: sled keeps up to 16 records in a leaf and rewrites a
//! leaf whole when it consolidates it, so a few hundred kilobytes of
//! transactions and receipts a block, stored under block-number keys,
//! made every commit rewrite leaves of up to a few megabytes (as separate
//! blob files, past sled's size limit for inline pages): two thirds of a
//! busy node's block-building time went to it. Appended here, each byte is
//! written once.
//!
//! Crash safety: a block's parts are appended and flushed to disk *before*
//! the sled batch that points at them commits. A crash between the two
//! leaves bytes past the last pointer, which [`BodyFile::open`] cuts off.
//! Removing a head block commits the sled batch first and cuts the file
//! after, so a crash in between leaves only such bytes. Every part carries
//! a CRC-32 in its pointer: a damaged file is reported as corrupt, naming
//! the block and the file, never decoded.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::StoreError;

/// The file's name inside the store's directory.
pub const BODY_FILE: &str = "bodies";

/// Where one part of a block lies in the body file, and its checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// CRC-32 (IEEE) of the bytes.
    pub crc: u32,
}

impl Span {
    /// First byte after the part.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// The append-only body file.
#[derive(Debug)]
pub struct BodyFile {
    path: PathBuf,
    file: File,
    /// Length of the committed content: where the next block is appended.
    end: Mutex<u64>,
}

impl BodyFile {
    /// Opens (or creates) the body file in `dir`, whose committed content
    /// ends at `committed` (the end of the head block's last part, 0 for a
    /// store with no block here). Bytes past it, appended before a crash
    /// and never pointed at, are cut off; a file shorter than that lost
    /// committed blocks and is refused.
    pub fn open(dir: &Path, committed: u64) -> Result<Self, StoreError> {
        let path = dir.join(BODY_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("opening", &path))?;
        let len = file.metadata().map_err(io("reading the length of", &path))?.len();
        if len < committed {
            return Err(StoreError::Corrupt(format!(
                "{}: {len} bytes, but the stored blocks reach byte {committed}",
                path.display()
            )));
        }
        if len > committed {
            tracing::warn!(
                path = %path.display(), bytes = len - committed,
                "cutting off block data written before a crash and never committed"
            );
            file.set_len(committed).map_err(io("truncating", &path))?;
            file.sync_all().map_err(io("flushing", &path))?;
        }
        Ok(Self { path, file, end: Mutex::new(committed) })
    }

    /// Appends `parts` one after another and flushes them to disk; returns
    /// where each lies.
    pub fn append<const N: usize>(&self, parts: [&[u8]; N]) -> Result<[Span; N], StoreError> {
        let mut end = self.end.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut spans = [Span::default(); N];
        let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut offset = *end;
        for (span, part) in spans.iter_mut().zip(parts) {
            let len = u32::try_from(part.len()).map_err(|_| {
                StoreError::Corrupt(format!("a block part of {} bytes is too large", part.len()))
            })?;
            *span = Span { offset, len, crc: crc32fast::hash(part) };
            offset += u64::from(len);
            bytes.extend_from_slice(part);
        }
        let written = self.file.write_all_at(&bytes, *end).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Whatever part of it landed lies past the committed end: the next
            // append writes over it, or the next open cuts it off.
            return Err(io("appending to", &self.path)(e));
        }
        *end = offset;
        Ok(spans)
    }

    /// The bytes of `span`, checked against its CRC; `what` names the part
    /// in errors.
    pub fn read(&self, span: Span, what: &str) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0u8; span.len as usize];
        self.file.read_exact_at(&mut bytes, span.offset).map_err(|e| {
            StoreError::Corrupt(format!(
                "{what}: reading bytes {}..{} of {}: {e}",
                span.offset,
                span.end(),
                self.path.display()
            ))
        })?;
        if crc32fast::hash(&bytes) != span.crc {
            return Err(StoreError::Corrupt(format!(
                "{what}: bytes {}..{} of {} fail their checksum",
                span.offset,
                span.end(),
                self.path.display()
            )));
        }
        Ok(bytes)
    }

    /// Cuts the file back to `offset`, once nothing points past it.
    pub fn truncate(&self, offset: u64) -> Result<(), StoreError> {
        let mut end = self.end.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.file.set_len(offset).map_err(io("truncating", &self.path))?;
        *end = offset;
        Ok(())
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_back_and_damage_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = BodyFile::open(dir.path(), 0).expect("opens");
        let [a, b] = file.append([b"first", b"second part"]).expect("appends");
        assert_eq!((a.offset, a.len, b.offset, b.len), (0, 5, 5, 11));
        let [c] = file.append([b"third"]).expect("appends");
        assert_eq!(c.offset, 16);
        assert_eq!(file.read(b, "part b").expect("reads"), b"second part");
        assert_eq!(file.read(c, "part c").expect("reads"), b"third");

        // A flipped byte fails the checksum, named with the part and file.
        std::fs::write(dir.path().join(BODY_FILE), b"firsX second partthird").expect("writes");
        let error = file.read(a, "block 7").expect_err("damaged").to_string();
        assert!(error.contains("block 7") && error.contains("checksum"), "{error}");
        // Past the end: named, not a panic.
        let beyond = Span { offset: 100, len: 4, crc: 0 };
        assert!(file.read(beyond, "block 9").expect_err("short").to_string().contains("block 9"));
    }

    #[test]
    fn open_cuts_uncommitted_bytes_and_refuses_lost_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let file = BodyFile::open(dir.path(), 0).expect("opens");
            file.append([b"committed", b"never pointed at"]).expect("appends");
        }
        let file = BodyFile::open(dir.path(), 9).expect("opens");
        let len = std::fs::metadata(dir.path().join(BODY_FILE)).expect("stat").len();
        assert_eq!(len, 9, "the uncommitted tail is cut off");
        // The next block goes where the committed content ends.
        let [next] = file.append([b"next"]).expect("appends");
        assert_eq!(next.offset, 9);
        drop(file);
        let error = BodyFile::open(dir.path(), 100).expect_err("short").to_string();
        assert!(error.contains("reach byte 100"), "{error}");

        // Cutting back: the next append lands at the cut.
        let file = BodyFile::open(dir.path(), 13).expect("opens");
        file.truncate(9).expect("truncates");
        let [again] = file.append([b"again"]).expect("appends");
        assert_eq!(again.offset, 9);
    }
}
