// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheckpointLib} from "../libs/CheckpointLib.sol";
import {MessageLib} from "../libs/MessageLib.sol";
import {MultisigLib} from "../libs/MultisigLib.sol";
import {StaticMultisigIsm} from "./StaticMultisigIsm.sol";

/// @title Multisig ISM over checkpoints that sign the message id (module type 5)
/// @notice Metadata (SPEC 5.2): merkleTreeHook (32) || root (32) || index (4) || signatures.
/// The validators' signature over (origin, hook, root, index, id) is the whole proof; the
/// ISM does not tie `index` to the message's leaf.
contract StaticMessageIdMultisigIsm is StaticMultisigIsm {
    using MessageLib for bytes;

    /// @notice Module type MESSAGE_ID_MULTISIG.
    function moduleType() external pure returns (uint8) {
        return uint8(Types.MESSAGE_ID_MULTISIG);
    }

    /// @notice Verifies a threshold of validator signatures over the message's checkpoint.
    function verify(bytes calldata metadata, bytes calldata message) external view returns (bool) {
        if (metadata.length < 68) revert MultisigLib.MetadataTooShort(metadata.length, 68);
        message.checkLength();
        bytes32 hook;
        bytes32 root;
        uint32 index;
        uint32 originDomain;
        bytes32 id;
        assembly ("memory-safe") {
            hook := calldataload(metadata.offset)
            root := calldataload(add(metadata.offset, 32))
            index := shr(224, calldataload(add(metadata.offset, 64)))
            originDomain := shr(224, calldataload(add(message.offset, 5)))
            let p := mload(0x40)
            calldatacopy(p, message.offset, message.length)
            id := keccak256(p, message.length)
        }
        MultisigLib.checkRoot(root);
        _verifySignatures(CheckpointLib.digest(originDomain, hook, root, index, id), metadata[68:]);
        return true;
    }
}
