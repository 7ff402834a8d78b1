// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Interchain security module (ISM) interface
/// @notice Hyperlane v3 compatible: `verify(bytes,bytes)` is selector 0xf7e83aee and
/// `moduleType()` is 0x6465e69f.
interface IInterchainSecurityModule {
    /// @notice Module type values, as in the v3 wire protocol.
    enum Types {
        UNUSED,
        ROUTING,
        AGGREGATION,
        LEGACY_MULTISIG,
        MERKLE_ROOT_MULTISIG,
        MESSAGE_ID_MULTISIG,
        NULL,
        CCIP_READ
    }

    /// @notice The module type, which tells relayers how to build metadata.
    function moduleType() external view returns (uint8);

    /// @notice Verifies `metadata` proves `message`; reverts or returns false to reject.
    function verify(bytes calldata metadata, bytes calldata message) external returns (bool);
}

/// @title ISM that can verify many messages from one origin with one proof
/// @notice Used by `Mailbox.processBatch`: one threshold signature set over a checkpoint
/// plus a Merkle multiproof of every message id against the signed root.
interface IBatchInterchainSecurityModule is IInterchainSecurityModule {
    /// @notice Verifies that every id in `ids` is a leaf of the origin tree proven by `metadata`.
    /// @param metadata Batch metadata (see `StaticMerkleRootMultisigIsm.verifyBatch`).
    /// @param origin The origin domain shared by all messages.
    /// @param ids The message ids, in the order the multiproof lists their leaves.
    function verifyBatch(bytes calldata metadata, uint32 origin, bytes32[] calldata ids)
        external
        view
        returns (bool);
}

/// @title A recipient that names its own ISM
interface ISpecifiesInterchainSecurityModule {
    /// @notice The ISM the Mailbox must use for messages to this recipient (zero: default).
    function interchainSecurityModule() external view returns (IInterchainSecurityModule);
}
