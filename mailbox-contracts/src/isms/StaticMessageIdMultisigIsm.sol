// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

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
        (uint256 ptr, uint256 n, uint256 t) = _loadValidators();
        MultisigLib.verifyMessageId(metadata, message.origin(), message.id(), ptr, n, t);
        return true;
    }
}
