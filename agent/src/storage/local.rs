//! Checkpoint storage in a local directory (`file://` locations).
//!
//! Every write goes to a temporary file in the same directory, is flushed to
//! disk, renamed over the target and the directory flushed, so a crash leaves
//! either the old object or the new one, never half of one. A group write
//! (`put_many`: a validator's window of checkpoints) writes every temporary
//! file first and flushes them all at once (on Linux one `syncfs`), then
//! renames each and flushes the directory once.

use std::{
    fs, io,
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use async_trait::async_trait;
use metalayer_protocol::signed::StorageLayout;

use super::{MAX_OBJECT_BYTES, ObjectBackend, StorageError};

/// A directory of checkpoint objects, named as SPEC §4.3 names local ones.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    location: String,
}

impl LocalStorage {
    /// Storage rooted at `root`, made absolute against the current directory
    /// (so the announced location means the same to every reader). The
    /// directory is created on the first write.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let given = root.as_ref();
        let setup = |reason: String| StorageError::Setup {
            location: format!("file://{}", given.display()),
            reason,
        };
        if given.as_os_str().is_empty() {
            return Err(setup("the directory path is empty".into()));
        }
        let root = std::path::absolute(given)
            .map_err(|e| setup(format!("cannot make the path absolute: {e}")))?;
        let Some(text) = root.to_str() else {
            return Err(setup("the directory path is not valid UTF-8".into()));
        };
        let location = format!("file://{text}");
        Ok(Self { root, location })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for object `name`, which must be a plain file name.
    fn object_path(&self, name: &str) -> Result<PathBuf, StorageError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && !name.chars().any(char::is_control);
        if !plain {
            return Err(StorageError::Setup {
                location: self.location.clone(),
                reason: format!("object name {name:?} is not a plain file name"),
            });
        }
        Ok(self.root.join(name))
    }
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.display().to_string();
    move |source| StorageError::Io { op, path, source }
}

/// Distinguishes temporary files of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn read_capped(path: &Path, location: &str, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("opening", path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_OBJECT_BYTES + 1).read_to_end(&mut bytes).map_err(io_error("reading", path))?;
    if bytes.len() as u64 > MAX_OBJECT_BYTES {
        return Err(StorageError::TooLarge {
            location: location.to_owned(),
            object: name.to_owned(),
            size: bytes.len() as u64,
            limit: MAX_OBJECT_BYTES,
        });
    }
    Ok(Some(bytes))
}

/// Writes `objects` into `dir`, each through a temporary file in the same
/// directory, with one flush for the group: every temporary file is
/// written, all are made durable at once, then each is renamed over its
/// target and the directory flushed. After a crash each object is the old
/// or the new one, never half of one.
fn write_all_atomically(dir: &Path, objects: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
    fs::create_dir_all(dir).map_err(io_error("creating directory", dir))?;
    // (temporary file, target): every temporary left behind by a failure is removed.
    let mut paths: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(objects.len());
    let result = (|| {
        let mut files = Vec::with_capacity(objects.len());
        for (name, bytes) in objects {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            let mut file = fs::File::create(&temp).map_err(io_error("creating", &temp))?;
            paths.push((temp.clone(), dir.join(name)));
            file.write_all(&bytes).map_err(io_error("writing", &temp))?;
            files.push(file);
        }
        flush_files(dir, &paths, &files)?;
        for (temp, target) in &paths {
            fs::rename(temp, target).map_err(io_error("renaming into", target))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (temp, _) in &paths {
            let _ = fs::remove_file(temp);
        }
    }
    result?;
    sync_dir(dir)
}

/// Makes the contents of `files` (the temporary files of `paths`, all in
/// `dir`) durable: one file is flushed itself; on Linux a group is flushed by
/// one `syncfs` of the directory's filesystem (one journal commit instead of
/// one per file); elsewhere each file is flushed.
fn flush_files(
    dir: &Path,
    paths: &[(PathBuf, PathBuf)],
    files: &[fs::File],
) -> Result<(), StorageError> {
    #[cfg(target_os = "linux")]
    if files.len() > 1 {
        let handle = fs::File::open(dir).map_err(io_error("opening directory", dir))?;
        return rustix::fs::syncfs(&handle).map_err(|e| io_error("flushing", dir)(e.into()));
    }
    let _ = dir;
    for ((temp, _), file) in paths.iter().zip(files) {
        file.sync_all().map_err(io_error("flushing", temp))?;
    }
    Ok(())
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("flushing directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn remove(dir: &Path, name: &str) -> Result<(), StorageError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("removing", &path)(e)),
    }
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    path: &Path,
    job: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(job).await.map_err(|e| StorageError::Io {
        op: what,
        path: path.display().to_string(),
        source: io::Error::other(e.to_string()),
    })?
}

#[async_trait]
impl ObjectBackend for LocalStorage {
    fn layout(&self) -> StorageLayout {
        StorageLayout::Local
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.object_path(name)?;
        let (location, name) = (self.location.clone(), name.to_owned());
        blocking("reading", &self.root, move || read_capped(&path, &location, &name)).await
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.object_path(name)?;
        let (dir, name) = (self.root.clone(), name.to_owned());
        blocking("writing", &self.root, move || write_all_atomically(&dir, vec![(name, bytes)]))
            .await
    }

    async fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
        for (name, _) in &objects {
            self.object_path(name)?;
        }
        let dir = self.root.clone();
        blocking("writing", &self.root, move || write_all_atomically(&dir, objects)).await
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.object_path(name)?;
        let (dir, name) = (self.root.clone(), name.to_owned());
        blocking("removing", &self.root, move || remove(&dir, &name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_absolute_file_urls() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path()).unwrap();
        assert_eq!(storage.location(), format!("file://{}", dir.path().display()));
        let relative = LocalStorage::new("checkpoints").unwrap();
        assert!(relative.location().starts_with("file:///"), "{}", relative.location());
        assert!(relative.location().ends_with("/checkpoints"));
        assert!(matches!(LocalStorage::new(""), Err(StorageError::Setup { .. })));
    }

    #[tokio::test]
    async fn a_group_write_stores_every_object_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path()).unwrap();
        storage.put("b.json", b"old".to_vec()).await.unwrap();
        let objects: Vec<_> = ["a.json", "b.json", "c.json"]
            .iter()
            .map(|n| (n.to_string(), n.as_bytes().to_vec()))
            .collect();
        storage.put_many(objects).await.unwrap();
        for name in ["a.json", "b.json", "c.json"] {
            assert_eq!(storage.get(name).await.unwrap().as_deref(), Some(name.as_bytes()));
        }
        let mut names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["a.json", "b.json", "c.json"].map(std::ffi::OsString::from));
        // A bad name anywhere in the group refuses the whole group before writing.
        let bad = vec![("d.json".to_string(), vec![1]), ("../e.json".to_string(), vec![2])];
        assert!(matches!(storage.put_many(bad).await, Err(StorageError::Setup { .. })));
        assert_eq!(storage.get("d.json").await.unwrap(), None);
    }

    #[tokio::test]
    async fn writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nested/store");
        let storage = LocalStorage::new(&root).unwrap();
        storage.put("a.json", b"first".to_vec()).await.unwrap();
        storage.put("a.json", b"second".to_vec()).await.unwrap();
        assert_eq!(storage.get("a.json").await.unwrap().as_deref(), Some(&b"second"[..]));
        let names: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[tokio::test]
    async fn oversized_files_are_refused_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path()).unwrap();
        assert_eq!(storage.get("absent.json").await.unwrap(), None);
        fs::write(dir.path().join("big.json"), vec![b' '; MAX_OBJECT_BYTES as usize + 1]).unwrap();
        let err = storage.get("big.json").await.unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("big.json"), "{err}");
        fs::write(dir.path().join("edge.json"), vec![b' '; MAX_OBJECT_BYTES as usize]).unwrap();
        assert!(storage.get("edge.json").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_leave_one_whole_version() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path()).unwrap();
        let payload = |n: u8| vec![b'a' + n; 20_000];
        let writes: Vec<_> = (0..16u8)
            .map(|n| {
                let storage = storage.clone();
                tokio::spawn(async move { storage.put("same.json", payload(n)).await })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        let bytes = storage.get("same.json").await.unwrap().unwrap();
        assert!((0..16u8).any(|n| bytes == payload(n)), "a mix of writes");
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("same.json")]);
    }

    #[tokio::test]
    async fn object_names_stay_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().join("store")).unwrap();
        for name in ["../escape.json", "a/b.json", ".hidden", "", "a\nb"] {
            let err = storage.put(name, b"x".to_vec()).await.unwrap_err();
            assert!(err.to_string().contains("plain file name"), "{name:?}: {err}");
            assert!(storage.get(name).await.is_err(), "{name:?}");
        }
        assert!(!dir.path().join("escape.json").exists());
    }

    #[tokio::test]
    async fn deleting_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path()).unwrap();
        storage.delete("flag.json").await.unwrap();
        storage.put("flag.json", b"{}".to_vec()).await.unwrap();
        storage.delete("flag.json").await.unwrap();
        assert!(!dir.path().join("flag.json").exists());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unwritable_directories_are_io_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"not a directory").unwrap();
        let storage = LocalStorage::new(blocker.join("sub")).unwrap();
        let err = storage.put("a.json", b"x".to_vec()).await.unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
        assert!(err.to_string().contains("sub"), "{err}");
    }
}
