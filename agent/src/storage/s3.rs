//! Checkpoint storage in an S3 bucket, or any S3-compatible object store
//! reached through an endpoint override (`s3://bucket/region[/folder]`).
//!
//! Relayers read anonymously, so a validator's bucket must let anyone
//! `s3:GetObject` and `s3:ListBucket`: without the list right S3 answers a
//! read of a not-yet-written checkpoint with 403 instead of 404, which this
//! backend reports as an error rather than as an absent object.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::StreamExt;
use metalayer_protocol::signed::StorageLayout;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig, aws::AmazonS3Builder, path::Path,
};

use super::{MAX_OBJECT_BYTES, ObjectBackend, StorageError};

/// Where in S3 a validator publishes: bucket, region and optional folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket name.
    pub bucket: String,
    /// The bucket's region, e.g. `us-east-1`.
    pub region: String,
    /// A key prefix (`a/b`, no leading or trailing slash), if any.
    pub folder: Option<String>,
}

impl fmt::Display for S3Location {
    /// The announced form: `s3://bucket/region[/folder]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.region)?;
        match &self.folder {
            Some(folder) => write!(f, "/{folder}"),
            None => Ok(()),
        }
    }
}

impl S3Location {
    /// Checks the parts: a valid bucket name, a region of lowercase letters,
    /// digits and dashes, and folder segments that are non-empty and not `.`
    /// or `..`. Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let bucket = &self.bucket;
        let bucket_chars = bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        let alnum_ends = bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !(3..=63).contains(&bucket.len()) || !bucket_chars || !alnum_ends {
            return Err(format!(
                "bucket {bucket:?} is not a valid bucket name (3 to 63 lowercase letters, \
                 digits, '.' or '-', starting and ending with a letter or digit)"
            ));
        }
        let region = &self.region;
        if region.is_empty()
            || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "region {region:?} is not a region name (lowercase letters, digits and '-')"
            ));
        }
        if let Some(folder) = &self.folder {
            let bad = |s: &str| {
                s.is_empty() || s == "." || s == ".." || s.chars().any(|c| c.is_control())
            };
            if folder.split('/').any(bad) {
                return Err(format!(
                    "folder {folder:?} has an empty, '.', '..' or control-character segment"
                ));
            }
        }
        Ok(())
    }

    fn object_path(&self, name: &str) -> Result<Path, StorageError> {
        let key = match &self.folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name.to_owned(),
        };
        Path::parse(&key).map_err(|e| StorageError::Setup {
            location: self.to_string(),
            reason: format!("object key {key:?} is not usable: {e}"),
        })
    }
}

/// How requests to the bucket are authenticated.
#[derive(Clone, Default)]
pub enum S3Credentials {
    /// Unsigned requests: reading a public bucket.
    #[default]
    Anonymous,
    /// The standard `AWS_*` environment variables (and, failing those, the
    /// instance's credentials), as the AWS tools read them.
    Environment,
    /// An access key given in configuration.
    Static {
        /// The access key id.
        access_key_id: String,
        /// The secret access key; never printed.
        secret_access_key: String,
    },
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Environment => f.write_str("Environment"),
            Self::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish(),
        }
    }
}

/// How an [`S3Storage`] reaches its bucket.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// An S3-compatible server to use instead of AWS, e.g.
    /// `http://127.0.0.1:9000` (requests are then path-style).
    pub endpoint: Option<String>,
    /// How requests are authenticated.
    pub credentials: S3Credentials,
    /// The limit on each request, and on a read as a whole.
    pub timeout: Duration,
}

impl Default for S3Options {
    /// Anonymous requests to AWS with SPEC §4.3's 10 s timeout.
    fn default() -> Self {
        Self {
            endpoint: None,
            credentials: S3Credentials::Anonymous,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Checkpoint storage in an S3 bucket, named as SPEC §4.3 names object-store
/// objects and prefixed with the location's folder.
#[derive(Debug, Clone)]
pub struct S3Storage {
    location: S3Location,
    store: Arc<dyn ObjectStore>,
    timeout: Duration,
}

impl S3Storage {
    /// A client for `location`; nothing is requested until the first read or
    /// write.
    pub fn new(location: S3Location, options: &S3Options) -> Result<Self, StorageError> {
        let setup = |reason: String| StorageError::Setup { location: location.to_string(), reason };
        location.validate().map_err(setup)?;
        let mut builder = match &options.credentials {
            S3Credentials::Environment => AmazonS3Builder::from_env(),
            _ => AmazonS3Builder::new(),
        };
        builder = builder
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_client_options(ClientOptions::new().with_timeout(options.timeout))
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: options.timeout,
                ..RetryConfig::default()
            });
        match &options.credentials {
            S3Credentials::Anonymous => builder = builder.with_skip_signature(true),
            S3Credentials::Environment => {}
            S3Credentials::Static { access_key_id, secret_access_key } => {
                builder = builder
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key);
            }
        }
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| setup(e.to_string()))?;
        Ok(Self { location, store: Arc::new(store), timeout: options.timeout })
    }

    /// The bucket, region and folder.
    pub fn s3_location(&self) -> &S3Location {
        &self.location
    }

    fn store_error(&self, op: &'static str, name: &str, e: object_store::Error) -> StorageError {
        StorageError::ObjectStore {
            op,
            location: self.location.to_string(),
            object: name.to_owned(),
            source: Box::new(e),
        }
    }

    async fn with_timeout<T>(
        &self,
        op: &'static str,
        name: &str,
        work: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        tokio::time::timeout(self.timeout, work).await.unwrap_or_else(|_| {
            Err(StorageError::Timeout {
                op,
                location: self.location.to_string(),
                object: name.to_owned(),
                seconds: self.timeout.as_secs(),
            })
        })
    }

    fn too_large(&self, name: &str, size: u64) -> StorageError {
        StorageError::TooLarge {
            location: self.location.to_string(),
            object: name.to_owned(),
            size,
            limit: MAX_OBJECT_BYTES,
        }
    }

    async fn get_capped(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.location.object_path(name)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error("reading", name, e)),
        };
        if result.meta.size > MAX_OBJECT_BYTES {
            return Err(self.too_large(name, result.meta.size));
        }
        // The size header could lie: count what actually arrives too.
        let mut bytes = Vec::with_capacity(result.meta.size as usize);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.store_error("reading", name, e))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_OBJECT_BYTES {
                return Err(self.too_large(name, bytes.len() as u64));
            }
        }
        Ok(Some(bytes))
    }
}

#[async_trait]
impl ObjectBackend for S3Storage {
    fn layout(&self) -> StorageLayout {
        StorageLayout::ObjectStore
    }

    fn location(&self) -> String {
        self.location.to_string()
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.with_timeout("reading", name, self.get_capped(name)).await
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let path = self.location.object_path(name)?;
        self.with_timeout("writing", name, async {
            // S3 replaces an object whole: readers never see a partial write.
            let payload = PutPayload::from(bytes);
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, "application/json".into());
            let options = PutOptions { attributes, ..PutOptions::default() };
            self.store
                .put_opts(&path, payload, options)
                .await
                .map_err(|e| self.store_error("writing", name, e))?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        let path = self.location.object_path(name)?;
        self.with_timeout("removing", name, async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.store_error("removing", name, e)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(bucket: &str, region: &str, folder: Option<&str>) -> S3Location {
        S3Location { bucket: bucket.into(), region: region.into(), folder: folder.map(Into::into) }
    }

    #[test]
    fn locations_display_in_announced_form() {
        assert_eq!(location("bkt", "us-east-1", None).to_string(), "s3://bkt/us-east-1");
        assert_eq!(location("bkt", "eu-west-2", Some("a/b")).to_string(), "s3://bkt/eu-west-2/a/b");
    }

    #[test]
    fn invalid_parts_are_named() {
        assert!(location("my-bucket.v1", "us-east-1", Some("x/y")).validate().is_ok());
        assert!(location("ab", "us-east-1", None).validate().unwrap_err().contains("bucket"));
        assert!(location("Bucket", "us-east-1", None).validate().unwrap_err().contains("bucket"));
        assert!(location("-bkt", "us-east-1", None).validate().is_err());
        assert!(location("bkt", "US_EAST", None).validate().unwrap_err().contains("region"));
        assert!(location("bkt", "", None).validate().unwrap_err().contains("region"));
        for folder in ["", "a//b", "a/..", "./a", "a/"] {
            let err = location("bkt", "r", Some(folder)).validate().unwrap_err();
            assert!(err.contains("folder"), "{folder:?}: {err}");
        }
    }

    #[test]
    fn keys_are_prefixed_with_the_folder() {
        let plain = location("bkt", "r", None);
        assert_eq!(plain.object_path("index.json").unwrap().as_ref(), "index.json");
        let nested = location("bkt", "r", Some("v/1"));
        assert_eq!(nested.object_path("index.json").unwrap().as_ref(), "v/1/index.json");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let creds = S3Credentials::Static {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret-value".into(),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIDEXAMPLE") && !shown.contains("very-secret-value"), "{shown}");
        let options = S3Options { credentials: creds, ..S3Options::default() };
        let storage = S3Storage::new(location("bkt", "us-east-1", None), &options).unwrap();
        assert!(!format!("{storage:?}").contains("very-secret-value"));
    }

    #[test]
    fn invalid_locations_are_refused_at_construction() {
        let err = S3Storage::new(location("B", "r", None), &S3Options::default()).unwrap_err();
        assert!(matches!(err, StorageError::Setup { .. }), "{err}");
    }
}
