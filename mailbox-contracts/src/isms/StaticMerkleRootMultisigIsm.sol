// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBatchInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {CheckpointLib} from "../libs/CheckpointLib.sol";
import {MerkleLib} from "../libs/MerkleLib.sol";
import {MessageLib} from "../libs/MessageLib.sol";
import {MultiProofLib} from "../libs/MultiProofLib.sol";
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
contract StaticMerkleRootMultisigIsm is StaticMultisigIsm, IBatchInterchainSecurityModule {
    using MessageLib for bytes;

    uint256 private constant SIGNATURES_OFFSET = 1096;
    uint256 private constant BATCH_HEADER = 72;

    /// @notice Module type MERKLE_ROOT_MULTISIG.
    function moduleType() external pure returns (uint8) {
        return uint8(Types.MERKLE_ROOT_MULTISIG);
    }

    /// @notice Verifies the message's proof against a root signed by a threshold of validators.
    function verify(bytes calldata metadata, bytes calldata message) external view returns (bool) {
        if (metadata.length < SIGNATURES_OFFSET) {
            revert MultisigLib.MetadataTooShort(metadata.length, SIGNATURES_OFFSET);
        }
        message.checkLength();
        uint32 messageIndex = uint32(bytes4(metadata[32:36]));
        uint32 signedIndex = uint32(bytes4(metadata[1092:1096]));
        require(messageIndex <= signedIndex, "Invalid merkle index metadata");
        bytes32[32] calldata proof;
        assembly ("memory-safe") {
            proof := add(metadata.offset, 68)
        }
        bytes32 root = MerkleLib.branchRoot(message.id(), proof, messageIndex);
        MultisigLib.checkRoot(root);
        bytes32 digest = CheckpointLib.digest(
            message.origin(), bytes32(metadata[0:32]), root, signedIndex, bytes32(metadata[36:68])
        );
        _verifySignatures(digest, metadata[SIGNATURES_OFFSET:]);
        return true;
    }

    /// @inheritdoc IBatchInterchainSecurityModule
    function verifyBatch(bytes calldata metadata, uint32 origin, bytes32[] calldata ids)
        external
        view
        returns (bool)
    {
        if (metadata.length < BATCH_HEADER) revert MultisigLib.MetadataTooShort(metadata.length, BATCH_HEADER);
        uint32 signedIndex = uint32(bytes4(metadata[32:36]));
        uint256 proofEnd = BATCH_HEADER + uint32(bytes4(metadata[68:72]));
        if (metadata.length < proofEnd) revert MultisigLib.MetadataTooShort(metadata.length, proofEnd);
        bytes32 root = MultiProofLib.root(ids, metadata[BATCH_HEADER:proofEnd], uint256(signedIndex) + 1);
        MultisigLib.checkRoot(root);
        bytes32 digest = CheckpointLib.digest(
            origin, bytes32(metadata[0:32]), root, signedIndex, bytes32(metadata[36:68])
        );
        _verifySignatures(digest, metadata[proofEnd:]);
        return true;
    }
}
