// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBatchInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {MessageLib} from "../libs/MessageLib.sol";
import {MultisigLib} from "../libs/MultisigLib.sol";
import {StaticMultisigIsm} from "./StaticMultisigIsm.sol";

/// @title Multisig ISM over checkpoint roots, with Merkle proofs (module type 4)
/// @notice `verify` metadata (SPEC 5.3): merkleTreeHook (32) || messageIndex (4) ||
/// signedMessageId (32) || proof (32 x 32) || signedIndex (4) || signatures. One checkpoint
/// at `signedIndex` covers every earlier leaf.
///
/// `verifyBatch` proves many messages under one checkpoint: metadata is
/// merkleTreeHook (32) || signedIndex (4) || signedMessageId (32) || proofLength (4) ||
/// multiproof (proofLength bytes: the protocol crate's `BatchProof` encoding, see
/// `MultiProofLib`) || signatures. The multiproof is checked against the tree of
/// `signedIndex + 1` leaves, so every leaf index must be at most `signedIndex`: the signed root
/// commits to nothing after it.
///
/// Both checks are `MultisigLib.verifyMerkleRoot` / `verifyMerkleRootBatch`, which the
/// Mailbox's embedded MerkleRoot ISM runs too.
contract StaticMerkleRootMultisigIsm is StaticMultisigIsm, IBatchInterchainSecurityModule {
    using MessageLib for bytes;

    /// @notice Module type MERKLE_ROOT_MULTISIG.
    function moduleType() external pure returns (uint8) {
        return uint8(Types.MERKLE_ROOT_MULTISIG);
    }

    /// @notice Verifies the message's proof against a root signed by a threshold of validators.
    function verify(bytes calldata metadata, bytes calldata message) external view returns (bool) {
        uint256 minimum = MultisigLib.MERKLE_ROOT_SIGNATURES_OFFSET;
        if (metadata.length < minimum) revert MultisigLib.MetadataTooShort(metadata.length, minimum);
        message.checkLength();
        (uint256 ptr, uint256 n, uint256 t) = _loadValidators();
        MultisigLib.verifyMerkleRoot(metadata, message.origin(), message.id(), ptr, n, t);
        return true;
    }

    /// @inheritdoc IBatchInterchainSecurityModule
    function verifyBatch(bytes calldata metadata, uint32 origin, bytes32[] calldata ids)
        external
        view
        returns (bool)
    {
        (uint256 ptr, uint256 n, uint256 t) = _loadValidators();
        MultisigLib.verifyMerkleRootBatch(metadata, origin, ids, ptr, n, t);
        return true;
    }
}
