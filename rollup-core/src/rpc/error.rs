//! JSON-RPC errors with the codes Ethereum clients expect.

use alloy::primitives::Bytes;
use alloy::sol_types::{Revert, SolError};
use jsonrpsee::types::ErrorObjectOwned;

use crate::error::{NodeError, StoreError};

/// Invalid method parameters (JSON-RPC 2.0).
pub const INVALID_PARAMS: i32 = -32602;
/// Internal error (JSON-RPC 2.0).
pub(super) const INTERNAL: i32 = -32603;
/// Server error: what geth returns for refused transactions and missing state.
pub const SERVER: i32 = -32000;
/// Limit exceeded (EIP-1474): log range or result caps.
pub const LIMIT_EXCEEDED: i32 = -32005;
/// Execution reverted, with the revert data (geth).
pub const EXECUTION_REVERTED: i32 = 3;

/// An error with a message and no data.
pub(super) fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// Invalid parameters naming the parameter and what was wrong.
pub(super) fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    err(INVALID_PARAMS, message)
}

/// Geth's shape for a revert: code 3, "execution reverted[: reason]", data = revert bytes.
pub(super) fn reverted(output: &Bytes) -> ErrorObjectOwned {
    let message = match Revert::abi_decode(output) {
        Ok(r) => format!("execution reverted: {}", r.reason),
        Err(_) => "execution reverted".to_string(),
    };
    ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(output.to_string()))
}

impl From<NodeError> for ErrorObjectOwned {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Tx(t) => err(SERVER, t.to_string()),
            NodeError::Invalid(m) => err(SERVER, m),
            NodeError::Config(m) => err(INVALID_PARAMS, m),
            NodeError::Store(s) => err(INTERNAL, s.to_string()),
            NodeError::Evm(m) => err(INTERNAL, m),
        }
    }
}

impl From<StoreError> for ErrorObjectOwned {
    fn from(e: StoreError) -> Self {
        err(INTERNAL, e.to_string())
    }
}
