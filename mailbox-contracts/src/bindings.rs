//! alloy `sol!` bindings generated from the committed artifacts in `out/`.
//!
//! Each contract module carries `BYTECODE` (creation code) and `DEPLOYED_BYTECODE`
//! (runtime code), the call and event types, and a provider-backed instance type.
//! Overloaded functions get numbered suffixes in the artifact's ABI order:
//! `Mailbox::dispatch_0Call` is `dispatch(uint32,bytes32,bytes,bytes,address)`,
//! `dispatch_1Call` is `dispatch(uint32,bytes32,bytes,bytes)` and `dispatch_2Call` is
//! `dispatch(uint32,bytes32,bytes)`; `quoteDispatch_0..3` follow the same ABI order
//! (`quoteDispatch_2Call` is the hook interface's `quoteDispatch(bytes,bytes)`).
#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Mailbox,
    "out/Mailbox.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    MerkleTreeHook,
    "out/MerkleTreeHook.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    InterchainGasPaymaster,
    "out/InterchainGasPaymaster.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    StorageGasOracle,
    "out/StorageGasOracle.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    ValidatorAnnounce,
    "out/ValidatorAnnounce.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    StaticMessageIdMultisigIsm,
    "out/StaticMessageIdMultisigIsm.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    StaticMerkleRootMultisigIsm,
    "out/StaticMerkleRootMultisigIsm.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    StaticMessageIdMultisigIsmFactory,
    "out/StaticMessageIdMultisigIsmFactory.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    StaticMerkleRootMultisigIsmFactory,
    "out/StaticMerkleRootMultisigIsmFactory.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    AggregationIsm,
    "out/AggregationIsm.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    DomainRoutingIsm,
    "out/DomainRoutingIsm.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    PausableHook,
    "out/PausableHook.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    PausableIsm,
    "out/PausableIsm.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    TestRecipient,
    "out/TestRecipient.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    NullRecipient,
    "out/NullRecipient.json"
);
sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Multicall3,
    "out/Multicall3.json"
);
