// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheckpointLib} from "../libs/CheckpointLib.sol";
import {MessageLib} from "../libs/MessageLib.sol";
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
        if (metadata.length < 68) revert MetadataTooShort(metadata.length, 68);
        message.checkLength();
        bytes32 root = bytes32(metadata[32:64]);
        _checkRoot(root);
        bytes32 digest = CheckpointLib.digest(
            message.origin(),
            bytes32(metadata[0:32]),
            root,
            uint32(bytes4(metadata[64:68])),
            message.id()
        );
        _verifySignatures(digest, metadata[68:]);
        return true;
    }
}
