//! Agent configuration: one TOML file, overridden by `METALAYER_*`
//! environment variables, overridden by `--set key.path=value` flags.
//!
//! The loader works on a [`toml::Table`] tree and deserialises any settings
//! type at the end, so each daemon defines its own settings struct (with
//! `#[serde(deny_unknown_fields)]`) and shares [`ChainSettings`].
//!
//! - Environment: `METALAYER_A__B__C=value` sets `a.b.c`. Path segments are
//!   separated by a double underscore because keys hold single ones, and are
//!   lowercased. [`CONFIG_FILE_ENV`] names the file and is not a key.
//! - Flags: `a.b.c=value`, applied after the environment, in order.
//! - Values are read as TOML when they are a boolean, a decimal number, an
//!   array, an inline table or a quoted string, and as a plain string
//!   otherwise, so `0x…` addresses, names and URLs need no quotes.
//!
//! Errors name the key path and where its value came from: the file, an
//! environment variable or a flag.

mod chain;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use chain::{
    ChainAddresses, ChainSettings, ChainSettingsError, DEFAULT_INDEX_CHUNK, IndexSettings,
    ReorgPeriod, RpcMode, validate_chains,
};

/// The prefix of environment variables that override configuration.
pub const ENV_PREFIX: &str = "METALAYER_";
/// The environment variable that names the configuration file; not a key.
pub const CONFIG_FILE_ENV: &str = "METALAYER_CONFIG";

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML. The file's text is not quoted: it may
    /// hold a key.
    #[error("config file {file} is not valid TOML at line {line}, column {column}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column (in characters), from 1.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// An override could not be applied.
    #[error("{origin}: {problem}")]
    Override {
        /// The environment variable or flag.
        origin: String,
        /// What was wrong.
        problem: String,
    },
    /// The merged tree does not fit the settings type.
    #[error("config key {key} (from {origin}): {message}")]
    Invalid {
        /// The dotted key path.
        key: String,
        /// Where the value came from.
        origin: String,
        /// What was wrong.
        message: String,
    },
}

/// One override and where it came from.
#[derive(Debug, Clone)]
struct Override {
    path: Vec<String>,
    value: toml::Value,
    origin: String,
}

/// Collects the file, environment and flags, then builds a settings value.
#[derive(Debug, Clone, Default)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    overrides: Vec<Override>,
}

impl ConfigLoader {
    /// An empty loader: no file, no overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `path` as the base layer.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Applies the `METALAYER_*` variables among `vars`, sorted by name so the
    /// result does not depend on the environment's order.
    pub fn env_vars(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut vars: Vec<_> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != CONFIG_FILE_ENV)
            .collect();
        vars.sort();
        for (name, raw) in vars {
            let origin = format!("environment variable {name}");
            let path = env_key_path(&name[ENV_PREFIX.len()..])
                .map_err(|problem| ConfigError::Override { origin: origin.clone(), problem })?;
            self.overrides.push(Override { path, value: parse_value(&raw), origin });
        }
        Ok(self)
    }

    /// Applies this process's `METALAYER_*` variables (those with UTF-8
    /// names and values).
    pub fn process_env(self) -> Result<Self, ConfigError> {
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        self.env_vars(vars)
    }

    /// Applies `key.path=value` flags, in order.
    pub fn sets<S: AsRef<str>>(
        mut self,
        assignments: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        for assignment in assignments {
            let assignment = assignment.as_ref();
            let (key, raw) = assignment.split_once('=').unwrap_or((assignment, ""));
            let origin = format!("flag --set {key}");
            if !assignment.contains('=') {
                let problem = "expected key.path=value".to_owned();
                return Err(ConfigError::Override { origin, problem });
            }
            let path = flag_key_path(key)
                .map_err(|problem| ConfigError::Override { origin: origin.clone(), problem })?;
            self.overrides.push(Override { path, value: parse_value(raw), origin });
        }
        Ok(self)
    }

    /// The merged tree: the file (or an empty table), then every override.
    pub fn merged(&self) -> Result<toml::Table, ConfigError> {
        self.merge(self.base()?)
    }

    /// The file's table, or an empty one.
    fn base(&self) -> Result<toml::Table, ConfigError> {
        match &self.file {
            Some(file) => read_file(file),
            None => Ok(toml::Table::new()),
        }
    }

    fn merge(&self, mut table: toml::Table) -> Result<toml::Table, ConfigError> {
        for o in &self.overrides {
            set_path(&mut table, &o.path, o.value.clone())
                .map_err(|problem| ConfigError::Override { origin: o.origin.clone(), problem })?;
        }
        Ok(table)
    }

    /// Loads the settings.
    pub fn load<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let base = self.base()?;
        let tree = toml::Value::Table(self.merge(base.clone())?);
        serde_path_to_error::deserialize(tree).map_err(|e| {
            let mut key: Vec<String> = e.path().iter().filter_map(segment_name).collect();
            let message = e.inner().message().trim().to_owned();
            let origin = if let Some(field) = named_field(&message, "missing field `") {
                // Nobody set a missing key: name whoever made its table.
                let origin = self.origin_of_table(&base, &key);
                key.push(field.to_owned());
                origin
            } else {
                if let Some(field) = named_field(&message, "unknown field `") {
                    key.push(field.to_owned());
                }
                self.origin_of(&key)
            };
            let key = if key.is_empty() { "(top level)".to_owned() } else { key.join(".") };
            ConfigError::Invalid { key, origin, message }
        })
    }

    /// Which layer last set `key`, a table holding it, or a value inside it.
    fn origin_of(&self, key: &[String]) -> String {
        let from_override = self
            .overrides
            .iter()
            .rev()
            .find(|o| !key.is_empty() && (key.starts_with(&o.path) || o.path.starts_with(key)));
        match from_override {
            Some(o) => o.origin.clone(),
            None => self.file_origin(),
        }
    }

    /// Which layer created the table at `path`: the file if it has it, else
    /// the first override that set something inside it.
    fn origin_of_table(&self, base: &toml::Table, path: &[String]) -> String {
        let mut table = Some(base);
        for segment in path {
            table = table.and_then(|t| t.get(segment)).and_then(toml::Value::as_table);
        }
        let creator = self.overrides.iter().find(|o| o.path.starts_with(path));
        match (table, creator) {
            (None, Some(o)) if !path.is_empty() => o.origin.clone(),
            _ => self.file_origin(),
        }
    }

    fn file_origin(&self) -> String {
        match &self.file {
            Some(file) => format!("config file {}", file.display()),
            None => "defaults (no config file given)".to_owned(),
        }
    }
}

fn read_file(file: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|source| ConfigError::Read { file: file.to_owned(), source })?;
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(0, |span| span.start).min(text.len());
        let before = text.get(..at).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        let message = e.message().trim().replace('\n', "; ");
        ConfigError::Parse { file: file.to_owned(), line, column, message }
    })
}

fn segment_name(segment: &serde_path_to_error::Segment) -> Option<String> {
    use serde_path_to_error::Segment;
    match segment {
        Segment::Map { key } => Some(key.clone()),
        Segment::Seq { index } => Some(index.to_string()),
        Segment::Enum { variant } => Some(variant.clone()),
        Segment::Unknown => None,
    }
}

/// The field named by serde's "unknown field `x`, expected …" or "missing
/// field `x`" message, given the text before the name.
fn named_field<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// `CHAINS__ALPHA__RPC_URLS` → `["chains", "alpha", "rpc_urls"]`.
fn env_key_path(rest: &str) -> Result<Vec<String>, String> {
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if path.iter().any(String::is_empty) {
        return Err("empty key segment (segments are separated by exactly two underscores)".into());
    }
    Ok(path)
}

/// `chains.alpha.rpc_urls` → `["chains", "alpha", "rpc_urls"]`.
fn flag_key_path(key: &str) -> Result<Vec<String>, String> {
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    if path.iter().any(|s| s.is_empty() || s.trim() != s) {
        return Err(format!("key {key:?} has an empty or space-padded segment"));
    }
    Ok(path)
}

/// Reads an override's text as a TOML value where that is unambiguous, and
/// as a string otherwise.
fn parse_value(raw: &str) -> toml::Value {
    let text = raw.trim();
    let Ok(value) = text.parse::<toml::Value>() else {
        return toml::Value::String(raw.to_owned());
    };
    let typed = match &value {
        toml::Value::Boolean(_) | toml::Value::Array(_) | toml::Value::Table(_) => true,
        // Quoted strings only: an unquoted word never parses as a TOML value.
        toml::Value::String(_) => true,
        // `0x…`, `0o…`, `0b…` are hex addresses and the like, not numbers.
        toml::Value::Integer(_) => {
            text.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit() || b == b'_')
        }
        toml::Value::Float(f) => f.is_finite(),
        toml::Value::Datetime(_) => false,
    };
    if typed { value } else { toml::Value::String(raw.to_owned()) }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut current = table;
    for (depth, segment) in parents.iter().enumerate() {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            other => {
                return Err(format!(
                    "cannot set {}: {} already holds a value of type {}, not a table",
                    path.join("."),
                    path[..=depth].join("."),
                    other.type_str()
                ));
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        name: String,
        #[serde(default)]
        workers: u32,
        #[serde(default)]
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        max_batch_size: u32,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        address: String,
        #[serde(default)]
        urls: Vec<String>,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "name = \"file\"\nworkers = 1\n[inner]\nmax_batch_size = 2\n");
        let settings: Settings = ConfigLoader::new()
            .file(&file)
            .env_vars(vars(&[
                ("METALAYER_WORKERS", "3"),
                ("METALAYER_INNER__MAX_BATCH_SIZE", "4"),
                ("METALAYER_INNER__ENABLED", "true"),
                ("METALAYER_CONFIG", "ignored.toml"),
                ("OTHER_VAR", "ignored"),
            ]))
            .unwrap()
            .sets(["workers=5", "inner.address=0x0000000000000000000000000000000000000001"])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(settings.name, "file");
        assert_eq!(settings.workers, 5);
        assert_eq!(settings.inner.max_batch_size, 4);
        assert!(settings.inner.enabled);
        assert_eq!(settings.inner.address, "0x0000000000000000000000000000000000000001");
    }

    #[test]
    fn values_are_typed_only_when_unambiguous() {
        assert_eq!(parse_value("42"), toml::Value::Integer(42));
        assert_eq!(parse_value("-1_000"), toml::Value::Integer(-1000));
        assert_eq!(parse_value("false"), toml::Value::Boolean(false));
        assert_eq!(parse_value("1.5"), toml::Value::Float(1.5));
        assert_eq!(parse_value("\"42\""), toml::Value::String("42".into()));
        for text in ["0x10", "nan", "inf", "1979-05-27", "http://a:1", "finalized", "a b", ""] {
            assert_eq!(parse_value(text), toml::Value::String(text.into()), "{text}");
        }
        let array = parse_value("[\"http://a\", \"http://b\"]");
        assert_eq!(array.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn errors_name_the_key_and_the_environment_variable() {
        let err = ConfigLoader::new()
            .env_vars(vars(&[("METALAYER_NAME", "x"), ("METALAYER_INNER__MAX_BATCH_SIZE", "lots")]))
            .unwrap()
            .load::<Settings>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("inner.max_batch_size"), "{err}");
        assert!(err.contains("METALAYER_INNER__MAX_BATCH_SIZE"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named_in_full_with_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "name = \"n\"\n[inner]\nmax_bacth_size = 3\n");
        let err = ConfigLoader::new().file(&file).load::<Settings>().unwrap_err().to_string();
        assert!(err.contains("inner.max_bacth_size"), "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
        let err = ConfigLoader::new()
            .sets(["name=n", "inner.typo=1"])
            .unwrap()
            .load::<Settings>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("inner.typo") && err.contains("--set inner.typo"), "{err}");
    }

    #[test]
    fn missing_keys_and_bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "workers = 1\n");
        let err = ConfigLoader::new().file(&file).load::<Settings>().unwrap_err().to_string();
        assert!(err.contains("name") && err.contains("agent.toml"), "{err}");
        let file = write(&dir, "name = \"n\"\nkey = \"0xfeedface\nworkers = 1\n");
        let err = ConfigLoader::new().file(&file).load::<Settings>().unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("line 2") && !text.contains("feedface"), "{text}");
        let missing = dir.path().join("absent.toml");
        let err = ConfigLoader::new().file(&missing).load::<Settings>().unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn missing_keys_in_tables_made_by_overrides_name_the_override() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Chains {
            chains: std::collections::BTreeMap<String, Chain>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Chain {
            domain: u32,
            url: String,
        }
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "[chains.alpha]\ndomain = 1\nurl = \"http://a\"\n");
        let err = ConfigLoader::new()
            .file(&file)
            .env_vars(vars(&[("METALAYER_CHAINS__BETA__URL", "http://b")]))
            .unwrap()
            .load::<Chains>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("chains.beta.domain"), "{err}");
        assert!(err.contains("METALAYER_CHAINS__BETA__URL"), "{err}");
        // A sibling set by a flag does not make the flag the culprit.
        let file = write(&dir, "[chains.alpha]\nurl = \"http://a\"\n");
        let err = ConfigLoader::new()
            .file(&file)
            .sets(["chains.alpha.url=http://c"])
            .unwrap()
            .load::<Chains>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("chains.alpha.domain") && err.contains("agent.toml"), "{err}");
        let err = ConfigLoader::new().file(&file).load::<Chains>().unwrap_err().to_string();
        assert!(err.contains("chains.alpha.domain") && err.contains("agent.toml"), "{err}");
    }

    #[test]
    fn malformed_overrides_are_refused() {
        let err = ConfigLoader::new().env_vars(vars(&[("METALAYER_A____B", "1")])).unwrap_err();
        assert!(err.to_string().contains("METALAYER_A____B"), "{err}");
        assert!(ConfigLoader::new().sets(["no_equals_sign"]).is_err());
        assert!(ConfigLoader::new().sets(["a..b=1"]).is_err());
        let err = ConfigLoader::new()
            .sets(["name=x", "name.inner=1"])
            .unwrap()
            .merged()
            .unwrap_err()
            .to_string();
        assert!(err.contains("name already holds a value of type string, not a table"), "{err}");
    }

    #[test]
    fn comma_free_arrays_come_from_toml_syntax() {
        let settings: Settings = ConfigLoader::new()
            .sets(["name=n", "inner.urls=[\"http://a\", \"http://b\"]"])
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(settings.inner.urls, ["http://a", "http://b"]);
    }
}
