//! Storage location strings, as validators announce them on chain, and the
//! settings a validator writes with.

use std::{path::PathBuf, sync::Arc};

use serde::Deserialize;

use super::{
    CheckpointStorage, LocalStorage, S3Credentials, S3Location, S3Options, S3Storage, StorageError,
};

/// The longest location string accepted. Announcements are arbitrary
/// strings on chain; real ones are short.
const MAX_LOCATION_LEN: usize = 1024;

/// A parsed storage location: where a validator's checkpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// `file://{path}`: a directory on this machine.
    Local(PathBuf),
    /// `s3://{bucket}/{region}[/{folder}]`.
    S3(S3Location),
}

/// Why a location string was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The string is not a location of a known form.
    #[error("storage location {location:?} is malformed: {reason}")]
    Malformed {
        /// The string as given (shortened if very long).
        location: String,
        /// What was wrong.
        reason: String,
    },
    /// A scheme other than `s3://` or `file://`.
    #[error(
        "storage location {location:?} has unsupported scheme {scheme:?}; supported: s3://, file://"
    )]
    UnsupportedScheme {
        /// The string as given.
        location: String,
        /// Its scheme.
        scheme: String,
    },
    /// A `file://` location while local storage is not allowed.
    #[error(
        "storage location {location:?} is a local directory; file:// locations are refused \
         unless local checkpoint storage is allowed (only sensible when every validator runs \
         on this machine)"
    )]
    LocalNotAllowed {
        /// The string as given.
        location: String,
    },
    /// The location parsed but its backend could not be built.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl StorageLocation {
    /// Parses an announced location string.
    pub fn parse(location: &str) -> Result<Self, LocationError> {
        let shown = || match location.char_indices().nth(120) {
            Some((at, _)) => format!("{}…", &location[..at]),
            None => location.to_owned(),
        };
        let malformed =
            |reason: &str| LocationError::Malformed { location: shown(), reason: reason.into() };
        if location.len() > MAX_LOCATION_LEN {
            return Err(malformed(&format!("longer than {MAX_LOCATION_LEN} bytes")));
        }
        let Some((scheme, rest)) = location.split_once("://") else {
            return Err(malformed("expected scheme://…, e.g. s3://bucket/region"));
        };
        match scheme {
            "file" => {
                if rest.is_empty() {
                    return Err(malformed("file:// needs a directory path"));
                }
                if rest.chars().any(char::is_control) {
                    return Err(malformed("the path holds control characters"));
                }
                Ok(Self::Local(PathBuf::from(rest)))
            }
            "s3" => {
                let mut parts = rest.splitn(3, '/');
                let bucket = parts.next().unwrap_or_default();
                let Some(region) = parts.next() else {
                    return Err(malformed("expected s3://bucket/region[/folder]"));
                };
                let s3 = S3Location {
                    bucket: bucket.to_owned(),
                    region: region.to_owned(),
                    folder: parts.next().map(str::to_owned),
                };
                s3.validate().map_err(|reason| malformed(&reason))?;
                Ok(Self::S3(s3))
            }
            other => Err(LocationError::UnsupportedScheme {
                location: shown(),
                scheme: other.chars().take(32).collect(),
            }),
        }
    }
}

/// What a reader allows when turning announced locations into backends.
#[derive(Debug, Clone, Default)]
pub struct LocationOptions {
    /// Accept `file://` locations (local devnets and tests only).
    pub allow_local: bool,
    /// How S3 locations are reached; anonymous reads by default.
    pub s3: S3Options,
}

/// Turns an announced location string into a backend to read from.
pub fn parse_location(
    location: &str,
    options: &LocationOptions,
) -> Result<Arc<dyn CheckpointStorage>, LocationError> {
    match StorageLocation::parse(location)? {
        StorageLocation::Local(_) if !options.allow_local => {
            Err(LocationError::LocalNotAllowed { location: location.to_owned() })
        }
        StorageLocation::Local(path) => Ok(Arc::new(LocalStorage::new(path)?)),
        StorageLocation::S3(s3) => Ok(Arc::new(S3Storage::new(s3, &options.s3)?)),
    }
}

/// Where a validator writes its checkpoints, as its configuration says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageSettings {
    /// A local directory.
    Local {
        /// The directory.
        path: PathBuf,
    },
    /// An S3 bucket; credentials come from the `AWS_*` environment variables.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The bucket's region.
        region: String,
        /// A key prefix, if any.
        #[serde(default)]
        folder: Option<String>,
        /// An S3-compatible server to use instead of AWS.
        #[serde(default)]
        endpoint: Option<String>,
    },
}

impl StorageSettings {
    /// Builds the backend to write to.
    pub fn open(&self) -> Result<Arc<dyn CheckpointStorage>, StorageError> {
        match self {
            Self::Local { path } => Ok(Arc::new(LocalStorage::new(path)?)),
            Self::S3 { bucket, region, folder, endpoint } => {
                let location = S3Location {
                    bucket: bucket.clone(),
                    region: region.clone(),
                    folder: folder.clone(),
                };
                let options = S3Options {
                    endpoint: endpoint.clone(),
                    credentials: S3Credentials::Environment,
                    ..S3Options::default()
                };
                Ok(Arc::new(S3Storage::new(location, &options)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, region: &str, folder: Option<&str>) -> StorageLocation {
        StorageLocation::S3(S3Location {
            bucket: bucket.into(),
            region: region.into(),
            folder: folder.map(Into::into),
        })
    }

    #[test]
    fn announced_forms_parse() {
        assert_eq!(
            StorageLocation::parse("s3://bkt/us-east-1").unwrap(),
            s3("bkt", "us-east-1", None)
        );
        assert_eq!(
            StorageLocation::parse("s3://bkt/us-east-1/val/one").unwrap(),
            s3("bkt", "us-east-1", Some("val/one"))
        );
        assert_eq!(
            StorageLocation::parse("file:///var/lib/metalayer").unwrap(),
            StorageLocation::Local("/var/lib/metalayer".into())
        );
    }

    #[test]
    fn malformed_strings_are_refused_with_the_reason() {
        let cases = [
            ("", "scheme"),
            ("bkt/us-east-1", "scheme"),
            ("s3://bkt", "s3://bucket/region"),
            ("s3://bkt/", "region"),
            ("s3:///us-east-1", "bucket"),
            ("s3://bkt/us-east-1/", "folder"),
            ("s3://bkt/us-east-1/a//b", "folder"),
            ("s3://BKT/us-east-1", "bucket"),
            ("file://", "path"),
            ("file://a\nb", "control"),
        ];
        for (input, needle) in cases {
            let err = StorageLocation::parse(input).unwrap_err();
            assert!(matches!(err, LocationError::Malformed { .. }), "{input:?}: {err}");
            assert!(err.to_string().contains(needle), "{input:?}: {err}");
        }
        let long = format!("s3://bkt/us-east-1/{}", "a".repeat(2000));
        let err = StorageLocation::parse(&long).unwrap_err().to_string();
        assert!(err.contains("longer than") && err.len() < 400, "{err}");
    }

    #[test]
    fn unknown_schemes_are_named() {
        let err = StorageLocation::parse("gs://bucket/folder").unwrap_err();
        assert!(matches!(&err, LocationError::UnsupportedScheme { scheme, .. } if scheme == "gs"));
    }

    #[test]
    fn local_locations_need_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let location = format!("file://{}", dir.path().display());
        let err = parse_location(&location, &LocationOptions::default()).unwrap_err();
        assert!(matches!(err, LocationError::LocalNotAllowed { .. }), "{err}");
        let options = LocationOptions { allow_local: true, ..LocationOptions::default() };
        let storage = parse_location(&location, &options).unwrap();
        assert_eq!(storage.announcement_location(), location);
    }

    #[test]
    fn s3_locations_round_trip_to_the_same_string() {
        let location = "s3://bkt/eu-central-1/validators/a";
        let storage = parse_location(location, &LocationOptions::default()).unwrap();
        assert_eq!(storage.announcement_location(), location);
    }

    #[test]
    fn settings_select_a_backend() {
        let settings: StorageSettings =
            toml::from_str("type = \"s3\"\nbucket = \"bkt\"\nregion = \"us-east-1\"").unwrap();
        assert_eq!(settings.open().unwrap().announcement_location(), "s3://bkt/us-east-1");
        let err = toml::from_str::<StorageSettings>("type = \"gcs\"\nbucket = \"b\"").unwrap_err();
        assert!(err.to_string().contains("gcs"), "{err}");
        let err =
            toml::from_str::<StorageSettings>("type = \"local\"\npath = \"x\"\nbucket = \"b\"")
                .unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
    }
}
