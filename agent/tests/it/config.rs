//! Configuration end to end: a daemon-shaped settings type loaded from a
//! file, environment and flags, then turned into chains, storage and a key.

use std::{collections::BTreeMap, path::Path};

use metalayer_agent::{
    config::{ChainSettings, ConfigLoader, ReorgPeriod, RpcMode, validate_chains},
    keys::{KeyError, KeySource},
    storage::StorageSettings,
    telemetry::{LogFormat, LogSettings},
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorSettings {
    origin: String,
    chains: BTreeMap<String, ChainSettings>,
    checkpoint_storage: StorageSettings,
    key: KeySource,
    #[serde(default)]
    log: LogSettings,
    metrics_port: u16,
}

const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

fn write_file(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

fn config_text(dir: &Path) -> String {
    format!(
        r#"
origin = "alpha"
metrics_port = 9090

[checkpoint_storage]
type = "local"
path = "{storage}"

[key]
type = "file"
path = "{key}"

[chains.alpha]
domain = 1001
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]
reorg_period = 2

[chains.alpha.addresses]
mailbox = "0x00000000000000000000000000000000000000a1"
merkle_tree_hook = "0x00000000000000000000000000000000000000a2"
interchain_gas_paymaster = "0x00000000000000000000000000000000000000a3"
validator_announce = "0x00000000000000000000000000000000000000a4"
"#,
        storage = dir.join("checkpoints").display(),
        key = dir.join("validator.key").display(),
    )
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn a_validator_config_loads_with_overrides_and_opens_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("validator.toml");
    write_file(&file, &config_text(dir.path()), 0o644);
    write_file(&dir.path().join("validator.key"), &format!("0x{KEY}\n"), 0o600);

    let mut settings: ValidatorSettings = ConfigLoader::new()
        .file(&file)
        .env_vars(env(&[
            ("METALAYER_CHAINS__ALPHA__RPC_URLS", "http://10.0.0.1:8545,http://10.0.0.2:8545"),
            ("METALAYER_CHAINS__ALPHA__RPC_MODE", "quorum"),
            ("METALAYER_CHAINS__ALPHA__REORG_PERIOD", "finalized"),
            ("METALAYER_LOG__FORMAT", "json"),
        ]))
        .unwrap()
        .sets(["chains.alpha.index.from=120", "metrics_port=9191"])
        .unwrap()
        .load()
        .unwrap();
    validate_chains(&mut settings.chains).unwrap();

    assert_eq!(settings.origin, "alpha");
    assert_eq!(settings.metrics_port, 9191);
    assert_eq!(settings.log, LogSettings { format: LogFormat::Json, level: "info".into() });
    let alpha = &settings.chains["alpha"];
    assert_eq!(alpha.name, "alpha");
    assert_eq!(alpha.rpc_urls, ["http://10.0.0.1:8545", "http://10.0.0.2:8545"]);
    assert_eq!(alpha.rpc_mode, RpcMode::Quorum);
    assert_eq!(alpha.reorg_period, ReorgPeriod::Finalized);
    assert_eq!((alpha.index.from, alpha.index.chunk), (120, 1999));

    let key = settings.key.load().unwrap();
    assert_eq!(
        key.address(),
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
            .parse::<metalayer_protocol::Address>()
            .unwrap()
    );
    let storage = settings.checkpoint_storage.open().unwrap();
    assert!(storage.announcement_location().ends_with("/checkpoints"));
    assert!(storage.raise_latest_index(0).await.unwrap());
}

#[test]
fn config_mistakes_name_the_key_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("validator.toml");
    write_file(&file, &config_text(dir.path()), 0o644);

    let load = |vars: &[(&str, &str)], sets: &[&str]| {
        ConfigLoader::new()
            .file(&file)
            .env_vars(env(vars))
            .unwrap()
            .sets(sets)
            .unwrap()
            .load::<ValidatorSettings>()
            .unwrap_err()
            .to_string()
    };
    let err = load(&[("METALAYER_CHAINS__ALPHA__DOMAIN", "alpha")], &[]);
    assert!(err.contains("chains.alpha.domain"), "{err}");
    assert!(err.contains("METALAYER_CHAINS__ALPHA__DOMAIN"), "{err}");

    let err = load(&[], &["chains.alpha.reorg_period=latest"]);
    assert!(err.contains("chains.alpha.reorg_period") && err.contains("--set"), "{err}");

    let err = load(&[], &["chains.alpha.addresses.mailbox=0x12"]);
    assert!(err.contains("chains.alpha.addresses.mailbox"), "{err}");

    let err = load(&[("METALAYER_CHAINS__ALPHA__ADRESSES__MAILBOX", "0x01")], &[]);
    assert!(err.contains("chains.alpha.adresses"), "{err}");

    write_file(
        &file,
        &config_text(dir.path()).replace("metrics_port = 9090", "metrics_prot = 1"),
        0o644,
    );
    let err = load(&[], &[]);
    assert!(err.contains("metrics_prot") && err.contains("validator.toml"), "{err}");
}

#[test]
fn a_loose_key_file_named_in_config_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("validator.key");
    write_file(&key_file, KEY, 0o640);
    let source: KeySource =
        toml::from_str(&format!("type = \"file\"\npath = \"{}\"", key_file.display())).unwrap();
    let err = source.load().unwrap_err();
    #[cfg(unix)]
    {
        assert!(matches!(err, KeyError::LoosePermissions { mode: 0o640, .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("0640") && text.contains("chmod 600"), "{text}");
        assert!(!text.contains(&KEY[..16]), "{text}");
    }
    #[cfg(not(unix))]
    let _ = err;
}
