//! Deploys a full core stack through any alloy provider.
//!
//! [`deploy_core`] sends, in order: Mailbox, StorageGasOracle, InterchainGasPaymaster
//! (configured for the given remote domains), ValidatorAnnounce, the two static multisig ISM
//! factories and, through them, a MessageId and a MerkleRoot ISM for the validator set,
//! a TestRecipient, then `Mailbox.initialize`. The Mailbox's default hook is the Mailbox
//! itself (its embedded Merkle tree), so the address validators sign checkpoints for,
//! [`CoreDeployment::merkle_tree_hook`], is the Mailbox's; its default ISM is the chosen
//! multisig ISM; it has no required hook. Gas is paid to the IGP with `payForGas` after
//! dispatching.
//!
//! The Mailbox also embeds the validator set as its own multisig ISM when the set has at
//! most `MAX_EMBEDDED_VALIDATORS` (25) validators: a MessageId ISM (module type 5), or a
//! MerkleRoot ISM (module type 4) for [`DefaultIsm::EmbeddedMerkleRoot`].
//! [`DefaultIsm::Embedded`] and [`DefaultIsm::EmbeddedMerkleRoot`] make it the default ISM
//! (the cheapest `process` for each metadata layout).

use alloy::network::{Network, ReceiptResponse};
use alloy::primitives::{Address, aliases::U96};
use alloy::providers::Provider;
use serde::{Deserialize, Serialize};

use crate::bindings::{
    InterchainGasPaymaster, Mailbox, StaticMerkleRootMultisigIsmFactory,
    StaticMessageIdMultisigIsmFactory, StorageGasOracle, TestRecipient, ValidatorAnnounce,
};

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The configuration cannot give a working stack.
    #[error("invalid core config: {0}")]
    Config(&'static str),
    /// A deployment or call could not be sent or read.
    #[error("{step}: {source}")]
    Contract {
        /// What was being done.
        step: &'static str,
        /// The transport or contract error.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// A transaction was sent but its receipt never arrived.
    #[error("{step}: waiting for the receipt failed: {source}")]
    Pending {
        /// What was being done.
        step: &'static str,
        /// The error.
        #[source]
        source: Box<alloy::providers::PendingTransactionError>,
    },
    /// A transaction was mined but reverted.
    #[error("{step}: the transaction reverted")]
    Reverted {
        /// What was being done.
        step: &'static str,
    },
}

/// Which multisig ISM becomes the Mailbox's default ISM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultIsm {
    /// StaticMessageIdMultisigIsm: one signed checkpoint per message.
    #[default]
    MessageId,
    /// StaticMerkleRootMultisigIsm: Merkle proofs against a later checkpoint; also serves
    /// batch delivery.
    MerkleRoot,
    /// The Mailbox's embedded MessageId multisig ISM (same metadata and checks as
    /// `MessageId`, verified inside `process` without an external call). Needs at most
    /// [`MAX_EMBEDDED_VALIDATORS`] validators.
    Embedded,
    /// The Mailbox's embedded MerkleRoot multisig ISM (same metadata and checks as
    /// `MerkleRoot`, verified inside `process` and `processBatch` without an external call).
    /// Needs at most [`MAX_EMBEDDED_VALIDATORS`] validators.
    EmbeddedMerkleRoot,
}

impl DefaultIsm {
    /// Whether this is one of the Mailbox's embedded ISMs.
    pub fn is_embedded(self) -> bool {
        matches!(self, Self::Embedded | Self::EmbeddedMerkleRoot)
    }
}

/// Most validators the Mailbox's embedded ISM holds (`Mailbox.MAX_EMBEDDED_VALIDATORS`).
pub const MAX_EMBEDDED_VALIDATORS: usize = 25;

/// Module type of a MerkleRoot multisig ISM (`embeddedModuleType` of the Mailbox).
pub const MERKLE_ROOT_MODULE_TYPE: u8 = 4;
/// Module type of a MessageId multisig ISM (`embeddedModuleType` of the Mailbox).
pub const MESSAGE_ID_MODULE_TYPE: u8 = 5;

/// Gas price data and overhead for one remote domain, for the IGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteGasConfig {
    /// The remote domain.
    pub domain: u32,
    /// Value of one remote native unit in local native units, times 1e10.
    pub token_exchange_rate: u128,
    /// Remote gas price, remote native units per gas.
    pub gas_price: u128,
    /// Gas added to every payment's gas limit for this domain.
    pub gas_overhead: u64,
}

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// This chain's domain.
    pub local_domain: u32,
    /// Owner of the Mailbox, IGP, oracle and TestRecipient after deployment.
    pub owner: Address,
    /// Receiver of claimed IGP payments.
    pub beneficiary: Address,
    /// Validators that secure messages *into* this chain, in ISM order.
    pub validators: Vec<Address>,
    /// How many of them must sign.
    pub threshold: u8,
    /// Which multisig ISM is the default.
    #[serde(default)]
    pub default_ism: DefaultIsm,
    /// Remote domains the IGP quotes for.
    #[serde(default)]
    pub remote_gas: Vec<RemoteGasConfig>,
}

/// Addresses of a deployed core stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreDeployment {
    /// This chain's domain.
    pub domain: u32,
    /// The Mailbox.
    pub mailbox: Address,
    /// The address checkpoints are signed for (the Mailbox's embedded tree).
    pub merkle_tree_hook: Address,
    /// The InterchainGasPaymaster.
    pub interchain_gas_paymaster: Address,
    /// Its StorageGasOracle.
    pub storage_gas_oracle: Address,
    /// The ValidatorAnnounce.
    pub validator_announce: Address,
    /// Factory of StaticMessageIdMultisigIsm.
    pub message_id_ism_factory: Address,
    /// Factory of StaticMerkleRootMultisigIsm.
    pub merkle_root_ism_factory: Address,
    /// StaticMessageIdMultisigIsm for the configured validators.
    pub message_id_ism: Address,
    /// StaticMerkleRootMultisigIsm for the configured validators.
    pub merkle_root_ism: Address,
    /// The Mailbox's default ISM (one of the two above, or the Mailbox itself for
    /// [`DefaultIsm::Embedded`] and [`DefaultIsm::EmbeddedMerkleRoot`]).
    pub default_ism: Address,
    /// A TestRecipient.
    pub test_recipient: Address,
    /// Block of the Mailbox deployment, where indexers start.
    pub deployed_block: u64,
}

/// Deploys the core stack described by `config`; the provider's default sender pays.
pub async fn deploy_core<P, N>(
    provider: P,
    config: &CoreConfig,
) -> Result<CoreDeployment, DeployError>
where
    P: Provider<N> + Clone,
    N: Network,
{
    check(config)?;
    // The Mailbox goes first: its receipt names the sending account, which owns the
    // oracle and the IGP until they are configured and handed to `config.owner`.
    let step = "deploy Mailbox";
    // Embed the set when it fits (as a MerkleRoot ISM when that is to be the default, else as
    // a MessageId ISM); larger sets leave the Mailbox without an embedded ISM.
    let (embedded, embedded_threshold, embedded_type) =
        if config.validators.len() <= MAX_EMBEDDED_VALIDATORS {
            let module_type = if config.default_ism == DefaultIsm::EmbeddedMerkleRoot {
                MERKLE_ROOT_MODULE_TYPE
            } else {
                MESSAGE_ID_MODULE_TYPE
            };
            (config.validators.clone(), config.threshold, module_type)
        } else {
            (vec![], 0, 0)
        };
    let receipt = Mailbox::deploy_builder(
        provider.clone(),
        config.local_domain,
        config.owner,
        embedded,
        embedded_threshold,
        embedded_type,
    )
    .send()
    .await
    .map_err(contract(step))?
    .get_receipt()
    .await
    .map_err(|source| DeployError::Pending { step, source: Box::new(source) })?;
    if !receipt.status() {
        return Err(DeployError::Reverted { step });
    }
    let deployer = receipt.from();
    let deployed_block = receipt.block_number().unwrap_or_default();
    let mailbox_address = receipt.contract_address().ok_or(DeployError::Reverted { step })?;
    let mailbox = Mailbox::new(mailbox_address, provider.clone());
    let oracle = StorageGasOracle::deploy(provider.clone(), deployer)
        .await
        .map_err(contract("deploy StorageGasOracle"))?;
    let igp = InterchainGasPaymaster::deploy(provider.clone(), deployer, config.beneficiary)
        .await
        .map_err(contract("deploy InterchainGasPaymaster"))?;
    configure_gas(&oracle, &igp, config).await?;
    let announce = ValidatorAnnounce::deploy(provider.clone(), *mailbox.address())
        .await
        .map_err(contract("deploy ValidatorAnnounce"))?;
    let id_factory = StaticMessageIdMultisigIsmFactory::deploy(provider.clone())
        .await
        .map_err(contract("deploy StaticMessageIdMultisigIsmFactory"))?;
    let root_factory = StaticMerkleRootMultisigIsmFactory::deploy(provider.clone())
        .await
        .map_err(contract("deploy StaticMerkleRootMultisigIsmFactory"))?;
    let (v, t) = (config.validators.clone(), config.threshold);
    let deploy_id =
        StaticMessageIdMultisigIsmFactory::deployCall { validators: v.clone(), threshold: t };
    confirm("deploy MessageId ISM", id_factory.call_builder(&deploy_id).send().await).await?;
    let message_id_ism = id_factory
        .getAddress(v.clone(), t)
        .call()
        .await
        .map_err(contract("read MessageId ISM address"))?;
    let deploy_root =
        StaticMerkleRootMultisigIsmFactory::deployCall { validators: v.clone(), threshold: t };
    confirm("deploy MerkleRoot ISM", root_factory.call_builder(&deploy_root).send().await).await?;
    let merkle_root_ism = root_factory
        .getAddress(v, t)
        .call()
        .await
        .map_err(contract("read MerkleRoot ISM address"))?;
    let recipient = TestRecipient::deploy(provider.clone(), config.owner)
        .await
        .map_err(contract("deploy TestRecipient"))?;
    let default_ism = match config.default_ism {
        DefaultIsm::MessageId => message_id_ism,
        DefaultIsm::MerkleRoot => merkle_root_ism,
        DefaultIsm::Embedded | DefaultIsm::EmbeddedMerkleRoot => *mailbox.address(),
    };
    let init = mailbox.initialize(config.owner, default_ism, *mailbox.address(), Address::ZERO);
    confirm("initialize Mailbox", init.send().await).await?;
    if deployer != config.owner {
        let step = "hand over StorageGasOracle";
        confirm(step, oracle.transferOwnership(config.owner).send().await).await?;
        let step = "hand over InterchainGasPaymaster";
        confirm(step, igp.transferOwnership(config.owner).send().await).await?;
    }
    Ok(CoreDeployment {
        domain: config.local_domain,
        mailbox: *mailbox.address(),
        merkle_tree_hook: *mailbox.address(),
        interchain_gas_paymaster: *igp.address(),
        storage_gas_oracle: *oracle.address(),
        validator_announce: *announce.address(),
        message_id_ism_factory: *id_factory.address(),
        merkle_root_ism_factory: *root_factory.address(),
        message_id_ism,
        merkle_root_ism,
        default_ism,
        test_recipient: *recipient.address(),
        deployed_block,
    })
}

fn check(config: &CoreConfig) -> Result<(), DeployError> {
    let n = config.validators.len();
    if n == 0 || n > 255 {
        return Err(DeployError::Config("between 1 and 255 validators are needed"));
    }
    if config.threshold == 0 || usize::from(config.threshold) > n {
        return Err(DeployError::Config("threshold must be within 1..=validators"));
    }
    if config.default_ism.is_embedded() && n > MAX_EMBEDDED_VALIDATORS {
        return Err(DeployError::Config("the embedded ISM holds at most 25 validators"));
    }
    let mut seen = std::collections::HashSet::new();
    if config.validators.iter().any(|v| v.is_zero() || !seen.insert(*v)) {
        return Err(DeployError::Config("validators must be non-zero and distinct"));
    }
    Ok(())
}

async fn configure_gas<P, N>(
    oracle: &StorageGasOracle::StorageGasOracleInstance<P, N>,
    igp: &InterchainGasPaymaster::InterchainGasPaymasterInstance<P, N>,
    config: &CoreConfig,
) -> Result<(), DeployError>
where
    P: Provider<N>,
    N: Network,
{
    if config.remote_gas.is_empty() {
        return Ok(());
    }
    let data = config
        .remote_gas
        .iter()
        .map(|r| StorageGasOracle::RemoteGasDataConfig {
            remoteDomain: r.domain,
            tokenExchangeRate: r.token_exchange_rate,
            gasPrice: r.gas_price,
        })
        .collect();
    confirm("set remote gas data", oracle.setRemoteGasDataConfigs(data).send().await).await?;
    let params = config
        .remote_gas
        .iter()
        .map(|r| InterchainGasPaymaster::GasParam {
            remoteDomain: r.domain,
            config: InterchainGasPaymaster::DomainGasConfig {
                gasOracle: *oracle.address(),
                gasOverhead: U96::from(r.gas_overhead),
            },
        })
        .collect();
    confirm("set destination gas configs", igp.setDestinationGasConfigs(params).send().await).await
}

fn contract(step: &'static str) -> impl Fn(alloy::contract::Error) -> DeployError {
    move |source| DeployError::Contract { step, source: Box::new(source) }
}

async fn confirm<N: Network>(
    step: &'static str,
    sent: Result<alloy::providers::PendingTransactionBuilder<N>, alloy::contract::Error>,
) -> Result<(), DeployError> {
    let pending = sent.map_err(contract(step))?;
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|source| DeployError::Pending { step, source: Box::new(source) })?;
    if receipt.status() { Ok(()) } else { Err(DeployError::Reverted { step }) }
}
