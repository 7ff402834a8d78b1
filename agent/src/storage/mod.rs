//! Checkpoint storage: where validators publish signed checkpoints and their
//! announcement, and where relayers read them back (SPEC §4.3).
//!
//! [`CheckpointStorage`] is the one trait the daemons use; it speaks in
//! protocol types. Backends that are stores of named objects (a local
//! directory, an S3 bucket) implement the smaller [`ObjectBackend`] and get
//! [`CheckpointStorage`] from it, so object names, JSON encoding and the
//! checks on what is read live in this file only. A backend that is not a
//! store of objects (gossip) implements [`CheckpointStorage`] directly.
//!
//! Reads treat a missing object as `Ok(None)` and anything unreadable
//! (malformed JSON, an object over [`MAX_OBJECT_BYTES`], a checkpoint stored
//! under another index's name) as an error naming the object and location.

mod local;
mod location;
mod s3;

use std::fmt;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use metalayer_protocol::{
    B256,
    signed::{
        ANNOUNCEMENT_KEY, METADATA_KEY, REORG_FLAG_KEY, REORG_RPC_RESPONSES_KEY,
        SignedAnnouncement, SignedCheckpoint, StorageLayout,
    },
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use local::LocalStorage;
pub use location::{
    LocationError, LocationOptions, StorageLocation, StorageSettings, parse_location,
};
pub use s3::{S3Credentials, S3Location, S3Options, S3Storage};

use crate::config::ReorgPeriod;

/// Objects [`ObjectBackend::put_many`] writes at once by default.
pub const PUT_CONCURRENCY: usize = 32;

/// The largest object a reader accepts: 50 KiB. A signed checkpoint is about
/// 600 bytes; the cap keeps a hostile bucket from filling a relayer's memory.
pub const MAX_OBJECT_BYTES: u64 = 50 * 1024;

/// Why checkpoint storage could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An object exists but does not hold what its name says.
    #[error("malformed {object} in {location}: {reason}")]
    Malformed {
        /// The storage location string.
        location: String,
        /// The object name.
        object: String,
        /// What was wrong.
        reason: String,
    },
    /// An object is larger than [`MAX_OBJECT_BYTES`].
    #[error("{object} in {location} is over the {limit}-byte cap ({size} bytes or more)")]
    TooLarge {
        /// The storage location string.
        location: String,
        /// The object name.
        object: String,
        /// The size seen (a lower bound when the object was streamed).
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, …).
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An object store request failed.
    #[error("{op} {object} in {location}: {source}")]
    ObjectStore {
        /// What was being done.
        op: &'static str,
        /// The storage location string.
        location: String,
        /// The object name.
        object: String,
        /// The object store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A request did not finish within the backend's timeout.
    #[error("{op} {object} in {location} timed out after {seconds} s")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The storage location string.
        location: String,
        /// The object name.
        object: String,
        /// The timeout.
        seconds: u64,
    },
    /// A backend could not be built from its settings.
    #[error("cannot open checkpoint storage {location}: {reason}")]
    Setup {
        /// The storage location (or what was known of it).
        location: String,
        /// What was wrong.
        reason: String,
    },
}

/// What a validator records when its tree's root differs from the chain's:
/// stored as `reorg_flag.json`, whose presence stops the validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorgEvent {
    /// The root of the validator's own tree at `checkpoint_index`.
    pub local_merkle_root: B256,
    /// The root the chain reported at the reorg-lagged height.
    pub canonical_merkle_root: B256,
    /// The leaf index at which the roots were compared.
    pub checkpoint_index: u32,
    /// When the mismatch was seen, in seconds since the Unix epoch.
    pub unix_timestamp: u64,
    /// The reorg period the validator was running with.
    pub reorg_period: ReorgPeriod,
}

/// What an agent says about itself in `metadata_latest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMetadata {
    /// The source revision the agent was built from, or `unknown`.
    pub git_sha: String,
    /// The agent's version.
    pub version: String,
}

/// Signed checkpoints, the announcement and the validator's flags, by index
/// and name, whatever the medium.
///
/// One validator writes to a location; any number of relayers read it. The
/// latest index is raised by read-compare-write, which is sound for that
/// single writer.
#[async_trait]
pub trait CheckpointStorage: Send + Sync + fmt::Debug {
    /// Stores `checkpoint` under its index, replacing what was there.
    async fn write_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StorageError>;

    /// Stores several checkpoints. When this returns `Ok` every one is
    /// stored (and durable where the medium makes that a separate step);
    /// after an error or a crash each is stored whole or not at all. The
    /// default writes them one by one; backends that can make a group
    /// durable at once (a directory: one flush for all) do so.
    async fn write_checkpoints(
        &self,
        checkpoints: &[SignedCheckpoint],
    ) -> Result<(), StorageError> {
        for checkpoint in checkpoints {
            self.write_checkpoint(checkpoint).await?;
        }
        Ok(())
    }

    /// The signed checkpoint at `index`, if one is stored.
    async fn read_checkpoint(&self, index: u32) -> Result<Option<SignedCheckpoint>, StorageError>;

    /// The latest index the validator declared, if any.
    async fn latest_index(&self) -> Result<Option<u32>, StorageError>;

    /// Declares `index` the latest unless a larger one is already declared.
    /// Returns whether it wrote.
    async fn raise_latest_index(&self, index: u32) -> Result<bool, StorageError>;

    /// Stores the signed announcement.
    async fn write_announcement(
        &self,
        announcement: &SignedAnnouncement,
    ) -> Result<(), StorageError>;

    /// The signed announcement, if one is stored.
    async fn read_announcement(&self) -> Result<Option<SignedAnnouncement>, StorageError>;

    /// Stores `metadata_latest.json`.
    async fn write_metadata(&self, metadata: &AgentMetadata) -> Result<(), StorageError>;

    /// Raises the reorg flag.
    async fn write_reorg_flag(&self, event: &ReorgEvent) -> Result<(), StorageError>;

    /// The reorg flag, if raised. A flag that is present but unreadable is an
    /// error, never `None`: callers gating on the flag must treat any error as
    /// "maybe raised".
    async fn read_reorg_flag(&self) -> Result<Option<ReorgEvent>, StorageError>;

    /// Lowers the reorg flag (an operator's decision, after investigation).
    async fn clear_reorg_flag(&self) -> Result<(), StorageError>;

    /// Stores the per-RPC diagnostics written beside the reorg flag.
    async fn write_reorg_rpc_responses(
        &self,
        responses: &serde_json::Value,
    ) -> Result<(), StorageError>;

    /// The location string a validator announces for this storage.
    fn announcement_location(&self) -> String;
}

/// A store of small named objects: the part of a backend that differs
/// between a directory and a bucket.
#[async_trait]
pub trait ObjectBackend: Send + Sync + fmt::Debug {
    /// Which object names this backend uses.
    fn layout(&self) -> StorageLayout;

    /// The announced location string (`file://…`, `s3://…`).
    fn location(&self) -> String;

    /// The object's bytes, `None` if absent; at most [`MAX_OBJECT_BYTES`].
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores the object whole: a reader sees the old or the new bytes, never
    /// a mix or a prefix.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), StorageError>;

    /// Stores several objects, each as [`Self::put`] would; when this returns
    /// `Ok` all are stored. The default puts up to [`PUT_CONCURRENCY`] at once.
    async fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
        stream::iter(objects)
            .map(|(name, bytes)| async move { self.put(&name, bytes).await })
            .buffer_unordered(PUT_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    /// Removes the object; removing an absent object succeeds.
    async fn delete(&self, name: &str) -> Result<(), StorageError>;
}

fn malformed(backend: &dyn ObjectBackend, object: &str, reason: impl fmt::Display) -> StorageError {
    StorageError::Malformed {
        location: backend.location(),
        object: object.to_owned(),
        reason: reason.to_string(),
    }
}

/// `value` as pretty JSON for object `name`; an error rather than an empty
/// object if it cannot be serialised.
fn to_json<T: Serialize>(
    backend: &dyn ObjectBackend,
    name: &str,
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| malformed(backend, name, format_args!("cannot be serialised: {e}")))
}

async fn get_json<T: DeserializeOwned>(
    backend: &dyn ObjectBackend,
    name: &str,
) -> Result<Option<T>, StorageError> {
    let Some(bytes) = backend.get(name).await? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| malformed(backend, name, e))
}

/// Parses a latest-index object: a decimal number, as JSON writes it.
fn parse_index(bytes: &[u8]) -> Result<u32, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a decimal index, found {:?}", truncate(text)));
    }
    text.parse().map_err(|_| format!("index {} does not fit in 32 bits", truncate(text)))
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(32) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[async_trait]
impl<B: ObjectBackend> CheckpointStorage for B {
    async fn write_checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<(), StorageError> {
        let name = self.layout().checkpoint_key(checkpoint.value.checkpoint.index);
        let json = checkpoint.to_json_pretty().map_err(|e| malformed(self, &name, e))?;
        self.put(&name, json.into_bytes()).await
    }

    async fn write_checkpoints(
        &self,
        checkpoints: &[SignedCheckpoint],
    ) -> Result<(), StorageError> {
        let mut objects = Vec::with_capacity(checkpoints.len());
        for checkpoint in checkpoints {
            let name = self.layout().checkpoint_key(checkpoint.value.checkpoint.index);
            let json = checkpoint.to_json_pretty().map_err(|e| malformed(self, &name, e))?;
            objects.push((name, json.into_bytes()));
        }
        self.put_many(objects).await
    }

    async fn read_checkpoint(&self, index: u32) -> Result<Option<SignedCheckpoint>, StorageError> {
        let name = self.layout().checkpoint_key(index);
        let Some(bytes) = self.get(&name).await? else { return Ok(None) };
        let checkpoint =
            SignedCheckpoint::from_json(&bytes).map_err(|e| malformed(self, &name, e))?;
        let stored = checkpoint.value.checkpoint.index;
        if stored != index {
            return Err(malformed(self, &name, format!("holds the checkpoint for index {stored}")));
        }
        Ok(Some(checkpoint))
    }

    async fn latest_index(&self) -> Result<Option<u32>, StorageError> {
        let name = self.layout().latest_index_key();
        let Some(bytes) = self.get(name).await? else { return Ok(None) };
        parse_index(&bytes).map(Some).map_err(|reason| malformed(self, name, reason))
    }

    async fn raise_latest_index(&self, index: u32) -> Result<bool, StorageError> {
        if self.latest_index().await?.is_some_and(|current| current >= index) {
            return Ok(false);
        }
        self.put(self.layout().latest_index_key(), index.to_string().into_bytes()).await?;
        Ok(true)
    }

    async fn write_announcement(
        &self,
        announcement: &SignedAnnouncement,
    ) -> Result<(), StorageError> {
        let json =
            announcement.to_json_pretty().map_err(|e| malformed(self, ANNOUNCEMENT_KEY, e))?;
        self.put(ANNOUNCEMENT_KEY, json.into_bytes()).await
    }

    async fn read_announcement(&self) -> Result<Option<SignedAnnouncement>, StorageError> {
        let Some(bytes) = self.get(ANNOUNCEMENT_KEY).await? else { return Ok(None) };
        SignedAnnouncement::from_json(&bytes)
            .map(Some)
            .map_err(|e| malformed(self, ANNOUNCEMENT_KEY, e))
    }

    async fn write_metadata(&self, metadata: &AgentMetadata) -> Result<(), StorageError> {
        self.put(METADATA_KEY, to_json(self, METADATA_KEY, metadata)?).await
    }

    async fn write_reorg_flag(&self, event: &ReorgEvent) -> Result<(), StorageError> {
        self.put(REORG_FLAG_KEY, to_json(self, REORG_FLAG_KEY, event)?).await
    }

    async fn read_reorg_flag(&self) -> Result<Option<ReorgEvent>, StorageError> {
        get_json(self, REORG_FLAG_KEY).await
    }

    async fn clear_reorg_flag(&self) -> Result<(), StorageError> {
        self.delete(REORG_FLAG_KEY).await
    }

    async fn write_reorg_rpc_responses(
        &self,
        responses: &serde_json::Value,
    ) -> Result<(), StorageError> {
        self.put(REORG_RPC_RESPONSES_KEY, to_json(self, REORG_RPC_RESPONSES_KEY, responses)?).await
    }

    fn announcement_location(&self) -> String {
        self.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_index_objects_parse_as_decimal_only() {
        assert_eq!(parse_index(b"42"), Ok(42));
        assert_eq!(parse_index(b" 7\n"), Ok(7));
        assert_eq!(parse_index(b"4294967295"), Ok(u32::MAX));
        assert!(parse_index(b"4294967296").unwrap_err().contains("32 bits"));
        assert!(parse_index(b"-1").unwrap_err().contains("decimal"));
        assert!(parse_index(b"0x10").unwrap_err().contains("decimal"));
        assert!(parse_index(b"").is_err());
        assert!(parse_index(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn long_garbage_is_cut_in_error_messages() {
        let long = "x".repeat(1000);
        let err = parse_index(long.as_bytes()).unwrap_err();
        assert!(err.len() < 100, "{err}");
    }

    #[test]
    fn reorg_events_round_trip_through_json() {
        let event = ReorgEvent {
            local_merkle_root: B256::repeat_byte(1),
            canonical_merkle_root: B256::repeat_byte(2),
            checkpoint_index: 9,
            unix_timestamp: 1_700_000_000,
            reorg_period: ReorgPeriod::Blocks(5),
        };
        let json = String::from_utf8(serde_json::to_vec_pretty(&event).unwrap()).unwrap();
        assert!(json.contains("\"checkpoint_index\": 9"), "{json}");
        assert!(json.contains("\"reorg_period\": 5"), "{json}");
        assert_eq!(serde_json::from_str::<ReorgEvent>(&json).unwrap(), event);
    }
}
