//! Error types of the node library.

use thiserror::Error;

/// A failure of the sled chain store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled reported an I/O or database error.
    #[error("chain store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("chain store corrupt: {0}")]
    Corrupt(String),
    /// A file of the store could not be read or written.
    #[error("chain store: {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a transaction was refused by the pool (messages worded as geth words them).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TxError {
    /// Raw bytes are not a valid signed transaction.
    #[error("rlp: invalid transaction: {0}")]
    Decode(String),
    /// The signature does not recover to a sender.
    #[error("invalid sender: {0}")]
    InvalidSignature(String),
    /// Chain id differs from the node's.
    #[error("invalid chain id: have {have}, want {want}")]
    WrongChainId {
        /// Chain id in the transaction.
        have: u64,
        /// The node's chain id.
        want: u64,
    },
    /// Legacy transaction without replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    /// Nonce already used.
    #[error("nonce too low: next nonce {next}, tx nonce {tx}")]
    NonceTooLow {
        /// Next valid nonce of the sender.
        next: u64,
        /// Nonce in the transaction.
        tx: u64,
    },
    /// Balance below gas * price + value.
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}")]
    InsufficientFunds {
        /// Sender balance.
        balance: String,
        /// Maximum cost of the transaction.
        cost: String,
    },
    /// Gas limit above the block gas limit or the per-transaction cap.
    #[error("exceeds block gas limit: gas limit too high (tx {tx}, max {max})")]
    GasLimitTooHigh {
        /// Gas limit in the transaction.
        tx: u64,
        /// Highest accepted gas limit.
        max: u64,
    },
    /// Gas limit below the intrinsic cost.
    #[error("intrinsic gas too low: have {have}, want {want}")]
    IntrinsicGasTooLow {
        /// Gas limit in the transaction.
        have: u64,
        /// Intrinsic gas of the transaction.
        want: u64,
    },
    /// Same sender and nonce as a pooled transaction, without a 10% fee bump.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The exact transaction is already pooled.
    #[error("already known")]
    AlreadyKnown,
    /// Max fee below the current base fee.
    #[error("max fee per gas less than block base fee: maxFeePerGas {max_fee}, baseFee {base_fee}")]
    FeeCapTooLow {
        /// Max fee per gas of the transaction.
        max_fee: u128,
        /// Current base fee.
        base_fee: u64,
    },
    /// Priority fee above max fee.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// A transaction type this node does not accept (blobs).
    #[error("transaction type not supported")]
    TypeNotSupported,
    /// The pool is full.
    #[error("txpool is full")]
    PoolFull,
}

/// A failure of the node's core (store, execution).
#[derive(Debug, Error)]
pub enum NodeError {
    /// The chain store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A transaction was refused.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// The EVM reported an error that is not the transaction's fault.
    #[error("evm: {0}")]
    Evm(String),
    /// Invalid configuration or genesis.
    #[error("config: {0}")]
    Config(String),
    /// A request that cannot be served (unknown block, bad argument).
    #[error("{0}")]
    Invalid(String),
}
