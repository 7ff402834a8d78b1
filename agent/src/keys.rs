//! Signing keys: from a hex string, a key file, or an encrypted Ethereum
//! keystore (JSON + password).
//!
//! A key file or password file that group or others can read is refused:
//! the error names its mode and the `chmod` that fixes it. Keys never appear
//! in `Debug` output or in errors; secrets read along the way are zeroed
//! when dropped.

use std::{
    fmt, fs,
    io::Read,
    path::{Path, PathBuf},
};

use alloy::signers::local::PrivateKeySigner;
use metalayer_protocol::{Address, B256, LocalSigner, Signer};
use serde::Deserialize;
use zeroize::Zeroize;

/// A key file or password file is at most this long.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Why a key could not be loaded. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not 32 bytes of hex, or not a valid secp256k1 secret.
    #[error("{origin}: not a secp256k1 secret key: {reason}")]
    Invalid {
        /// Where the key came from (`hex key`, `key file …`).
        origin: String,
        /// What was wrong, without the key.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// `key file`, `password file`, …
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A secret file is readable by group or others.
    #[error(
        "{what} {path} has mode {mode:04o}, readable by group or others; \
         restrict it with `chmod 600 {path}`"
    )]
    LoosePermissions {
        /// `key file` or `password file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A keystore could not be decrypted.
    #[error("cannot decrypt keystore {path}: {reason}")]
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Why (a wrong password shows as a MAC mismatch).
        reason: String,
    },
    /// Key settings that name no password, or two.
    #[error("keystore {path}: {problem}")]
    Settings {
        /// The keystore file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
}

/// A string that is zeroed when dropped and never printed.
///
/// Only strings deserialise into it, and the error for anything else does
/// not repeat the value: a numeric password given unquoted through an
/// override must not end up in a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SecretString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SecretString, E> {
                Ok(SecretString(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<SecretString, E> {
                Ok(SecretString(s))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretString, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretString, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretString, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretString, E> {
                Err(E::custom(NOT_A_STRING))
            }
        }
        // `deserialize_any`: buffered enum content refuses a non-string before a
        // `deserialize_string` visitor could hide the value.
        deserializer.deserialize_any(Visitor)
    }
}

/// The error for a secret that is not a string; it never shows the value.
const NOT_A_STRING: &str = "a secret must be a string (value not shown); in an environment \
     variable or --set flag, quote values that look like numbers or booleans, e.g. '\"123456\"'";

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Where a key comes from, as configuration says (`type = "hex" | "file" |
/// "keystore"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// The key itself: 64 hex digits, with or without `0x`.
    Hex {
        /// The key.
        key: SecretString,
    },
    /// A file holding the key in hex, mode 600 or stricter.
    File {
        /// The file.
        path: PathBuf,
    },
    /// An encrypted Ethereum keystore (Web3 Secret Storage JSON).
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// A file holding the password (mode 600 or stricter); a trailing
        /// newline is not part of it.
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// The password itself (e.g. from an environment variable).
        #[serde(default)]
        password: Option<SecretString>,
    },
}

impl KeySource {
    /// Loads the key.
    pub fn load(&self) -> Result<Key, KeyError> {
        match self {
            Self::Hex { key } => Key::from_hex(key.expose()),
            Self::File { path } => Key::from_file(path),
            Self::Keystore { path, password_file, password } => {
                let password = match (password_file, password) {
                    (Some(file), None) => read_secret_file("password file", file)?,
                    (None, Some(password)) => password.clone(),
                    (None, None) => {
                        let problem = "no password: set password_file or password";
                        return Err(KeyError::Settings { path: path.clone(), problem });
                    }
                    (Some(_), Some(_)) => {
                        let problem = "both password_file and password are set; keep one";
                        return Err(KeyError::Settings { path: path.clone(), problem });
                    }
                };
                Key::from_keystore(path, password.expose().as_bytes())
            }
        }
    }
}

/// A loaded secp256k1 key: a checkpoint signer and a transaction signer over
/// the same secret. `Debug` shows the address only.
pub struct Key {
    signer: LocalSigner,
    tx_signer: PrivateKeySigner,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("address", &self.address()).finish_non_exhaustive()
    }
}

impl Key {
    /// The key's Ethereum address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The signer for checkpoints and announcements.
    pub fn signer(&self) -> &LocalSigner {
        &self.signer
    }

    /// The signer for transactions (alloy's wallet type).
    pub fn tx_signer(&self) -> &PrivateKeySigner {
        &self.tx_signer
    }

    /// Both signers.
    pub fn into_parts(self) -> (LocalSigner, PrivateKeySigner) {
        (self.signer, self.tx_signer)
    }

    /// A key from 64 hex digits, with or without `0x` and surrounding space.
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        Self::parse_hex("hex key", hex)
    }

    /// A key from a file holding it in hex. The file must not be readable
    /// by group or others.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = read_secret_file("key file", path)?;
        Self::parse_hex(&format!("key file {}", path.display()), text.expose())
    }

    /// A key from an encrypted Ethereum keystore and its password.
    pub fn from_keystore(path: &Path, password: &[u8]) -> Result<Self, KeyError> {
        let tx_signer = PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
            let reason = e.to_string();
            let reason = if reason.to_ascii_lowercase().contains("mac mismatch") {
                "wrong password (MAC mismatch)".to_owned()
            } else {
                reason
            };
            KeyError::Keystore { path: path.to_owned(), reason }
        })?;
        let mut secret = tx_signer.to_bytes();
        let signer = LocalSigner::from_bytes(&secret);
        secret.0.zeroize();
        let signer = signer.map_err(|e| KeyError::Invalid {
            origin: format!("keystore {}", path.display()),
            reason: e.to_string(),
        })?;
        Ok(Self { signer, tx_signer })
    }

    fn parse_hex(origin: &str, text: &str) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid { origin: origin.to_owned(), reason };
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "expected 64 hex digits (optionally after 0x), found {} characters{}",
                digits.len(),
                if digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ""
                } else {
                    " with non-hex ones"
                }
            )));
        }
        let mut secret = B256::ZERO;
        let decoded = alloy::hex::decode_to_slice(digits, secret.as_mut_slice());
        let result = decoded
            .map_err(|_| invalid("not hex".into()))
            .and_then(|()| Self::from_secret(&secret).map_err(invalid));
        secret.0.zeroize();
        result
    }

    fn from_secret(secret: &B256) -> Result<Self, String> {
        let signer = LocalSigner::from_bytes(secret).map_err(|e| e.to_string())?;
        let tx_signer = PrivateKeySigner::from_bytes(secret)
            .map_err(|_| "zero or not below the curve order".to_owned())?;
        Ok(Self { signer, tx_signer })
    }
}

/// Reads a small secret file after checking that only its owner can read it.
fn read_secret_file(what: &'static str, path: &Path) -> Result<SecretString, KeyError> {
    let read_error = |source| KeyError::Read { what, path: path.to_owned(), source };
    let file = fs::File::open(path).map_err(read_error)?;
    check_private(what, path, &file.metadata().map_err(read_error)?)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        bytes.zeroize();
        let source = std::io::Error::other(format!("longer than {MAX_SECRET_FILE_BYTES} bytes"));
        return Err(read_error(source));
    }
    let mut text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            e.into_bytes().zeroize();
            return Err(read_error(std::io::Error::other("not UTF-8 text")));
        }
    };
    let kept = text.trim_end_matches(['\n', '\r']).len();
    // Split the newline off and zero it, so no copy of the secret survives.
    text.split_off(kept).zeroize();
    Ok(SecretString(text))
}

#[cfg(unix)]
fn check_private(what: &'static str, path: &Path, meta: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::LoosePermissions { what, path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &'static str, _: &Path, _: &fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    const ADDRESS: &str = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";

    fn write_private(dir: &tempfile::TempDir, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        path
    }

    #[test]
    fn hex_keys_load_with_or_without_prefix() {
        let expected: Address = ADDRESS.parse().unwrap();
        let key = Key::from_hex(KEY).unwrap();
        assert_eq!(key.address(), expected);
        assert_eq!(key.tx_signer().address(), expected);
        assert_eq!(Key::from_hex(&format!("  {}\n", &KEY[2..])).unwrap().address(), expected);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let almost = &KEY[..KEY.len() - 1];
        for bad in [almost, "0xzz", "", &"0".repeat(64), &"f".repeat(64)] {
            let err = Key::from_hex(bad).unwrap_err().to_string();
            assert!(err.starts_with("hex key: not a secp256k1 secret key"), "{err}");
            assert!(bad.len() < 8 || !err.contains(&bad[4..]), "{err}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = Key::from_hex(KEY).unwrap();
        let shown = format!("{key:?} {:?}", key.signer());
        assert!(!shown.contains(&KEY[2..12]), "{shown}");
        let source = KeySource::Hex { key: SecretString::new(KEY.into()) };
        let shown = format!("{source:?}");
        assert!(!shown.contains(&KEY[2..12]) && shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn private_key_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_private(&dir, "key", &format!("{KEY}\n"), 0o600);
        let key = KeySource::File { path }.load().unwrap();
        assert_eq!(key.address(), ADDRESS.parse::<Address>().unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn readable_key_files_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_private(&dir, "key", KEY, 0o644);
        let err = Key::from_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::LoosePermissions { mode: 0o644, .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("0644") && text.contains("chmod 600"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains(&KEY[2..12]), "{text}");
    }

    #[test]
    fn missing_and_oversized_files_are_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = Key::from_file(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        let path = write_private(&dir, "big", &"0".repeat(5000), 0o600);
        let err = Key::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
    }

    #[test]
    fn keystore_settings_need_exactly_one_password() {
        let path = PathBuf::from("ks.json");
        let none = KeySource::Keystore { path: path.clone(), password_file: None, password: None };
        assert!(none.load().unwrap_err().to_string().contains("no password"));
        let both = KeySource::Keystore {
            path,
            password_file: Some("pw".into()),
            password: Some(SecretString::new("x".into())),
        };
        assert!(both.load().unwrap_err().to_string().contains("keep one"));
    }

    #[test]
    fn keystores_decrypt_with_the_right_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let secret = alloy::hex::decode(&KEY[2..]).unwrap();
        let mut rng = rand08::thread_rng();
        PrivateKeySigner::encrypt_keystore(dir.path(), &mut rng, &secret, "hunter2", Some("ks"))
            .unwrap();
        let path = dir.path().join("ks");
        let password_file = write_private(&dir, "pw", "hunter2\n", 0o600);
        let source = KeySource::Keystore {
            path: path.clone(),
            password_file: Some(password_file),
            password: None,
        };
        let key = source.load().unwrap();
        assert_eq!(key.address(), ADDRESS.parse::<Address>().unwrap());
        let err = Key::from_keystore(&path, b"hunter3").unwrap_err().to_string();
        assert!(err.contains("wrong password") && err.contains("ks"), "{err}");
        let garbage = write_private(&dir, "garbage.json", "{\"version\": 3}", 0o600);
        let err = Key::from_keystore(&garbage, b"hunter2").unwrap_err();
        assert!(matches!(err, KeyError::Keystore { .. }), "{err}");
    }

    #[test]
    fn secrets_that_are_not_strings_are_refused_without_the_value() {
        let err =
            toml::from_str::<KeySource>("type = \"hex\"\nkey = 987654321").unwrap_err().to_string();
        assert!(err.contains("must be a string") && !err.contains("987654321"), "{err}");
        let err =
            toml::from_str::<KeySource>("type = \"keystore\"\npath = \"k\"\npassword = 31415926")
                .unwrap_err()
                .to_string();
        assert!(err.contains("must be a string") && !err.contains("31415926"), "{err}");
        let source: KeySource = toml::from_str("type = \"hex\"\nkey = \"123\"").unwrap();
        assert!(matches!(source, KeySource::Hex { key } if key.expose() == "123"));
    }

    #[test]
    fn key_sources_deserialize_from_config() {
        let source: KeySource = toml::from_str("type = \"file\"\npath = \"/etc/key\"").unwrap();
        assert_eq!(source, KeySource::File { path: "/etc/key".into() });
        let source: KeySource =
            toml::from_str("type = \"keystore\"\npath = \"k.json\"\npassword_file = \"pw\"")
                .unwrap();
        assert!(matches!(source, KeySource::Keystore { password_file: Some(_), .. }));
        assert!(toml::from_str::<KeySource>("type = \"aws\"\nid = \"x\"").is_err());
    }
}
