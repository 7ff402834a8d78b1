// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {MultisigLib} from "../libs/MultisigLib.sol";

/// @title Multisig ISM whose validator set and threshold live in its own code
/// @notice Deployed only by a `StaticMultisigIsmFactory`, which appends
/// `validators (20 bytes each) || threshold (1 byte) || count (1 byte)` to the runtime code.
/// Reading the set with CODECOPY costs a few gas, where storage would cost 2100 per slot
/// and a delegating proxy a cold account access and a DELEGATECALL.
///
/// Signatures are checked as in v3 (SPEC 5.1), by `MultisigLib`: the first `threshold`
/// signatures must recover to distinct validators in the order of the validator list (a
/// subsequence); signatures beyond the threshold are ignored. Rejections name their reason.
abstract contract StaticMultisigIsm is IInterchainSecurityModule {
    /// @notice The validator set and threshold (the message is ignored).
    function validatorsAndThreshold(bytes calldata)
        external
        pure
        returns (address[] memory validators, uint8 threshold)
    {
        (uint256 ptr, uint256 n, uint256 t) = _loadValidators();
        validators = MultisigLib.toArray(ptr, n);
        threshold = uint8(t);
    }

    /// @dev Copies the packed validator list from the code tail into memory.
    function _loadValidators() internal pure returns (uint256 ptr, uint256 n, uint256 t) {
        assembly ("memory-safe") {
            let size := codesize()
            codecopy(0x00, sub(size, 2), 2)
            let word := mload(0x00)
            t := byte(0, word)
            n := byte(1, word)
            ptr := mload(0x40)
            let len := mul(n, 20)
            codecopy(ptr, sub(sub(size, 2), len), len)
            mstore(0x40, add(ptr, and(add(len, 31), not(31))))
        }
    }
}
