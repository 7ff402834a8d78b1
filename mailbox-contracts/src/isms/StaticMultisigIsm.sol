// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {MerkleLib} from "../libs/MerkleLib.sol";
import {SignatureLib} from "../libs/SignatureLib.sol";

/// @title Multisig ISM whose validator set and threshold live in its own code
/// @notice Deployed only by a `StaticMultisigIsmFactory`, which appends
/// `validators (20 bytes each) || threshold (1 byte) || count (1 byte)` to the runtime code.
/// Reading the set with CODECOPY costs a few gas, where storage would cost 2100 per slot
/// and a delegating proxy a cold account access and a DELEGATECALL.
///
/// Signatures are checked as in v3 (SPEC 5.1): the first `threshold` signatures must
/// recover to distinct validators in the order of the validator list (a subsequence);
/// signatures beyond the threshold are ignored. Rejections name their reason.
abstract contract StaticMultisigIsm is IInterchainSecurityModule {
    /// @notice The metadata is shorter than its fixed part.
    error MetadataTooShort(uint256 length, uint256 minimum);
    /// @notice Fewer than `threshold` signatures were supplied.
    error TooFewSignatures(uint256 supplied, uint256 threshold);
    /// @notice A signature recovers to an address outside the validator set.
    error SignerNotValidator(address signer);
    /// @notice A validator signed twice.
    error DuplicateSigner(address signer);
    /// @notice Signatures are not in validator-list order.
    error SignersOutOfOrder(address signer);
    /// @notice The checkpoint root is zero or the empty-tree root, which prove no message.
    error EmptyRoot(bytes32 root);

    /// @notice The validator set and threshold (the message is ignored).
    function validatorsAndThreshold(bytes calldata)
        external
        pure
        returns (address[] memory validators, uint8 threshold)
    {
        (uint256 ptr, uint256 n, uint256 t) = _loadValidators();
        validators = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            validators[i] = _validatorAt(ptr, i);
        }
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

    function _validatorAt(uint256 ptr, uint256 i) internal pure returns (address v) {
        assembly ("memory-safe") {
            v := shr(96, mload(add(ptr, mul(i, 20))))
        }
    }

    /// @dev Reverts unless the first `threshold` of the 65-byte signatures in `signatures`
    /// come from validators, in list order, each at most once. The loop runs once per
    /// signature on every delivery, so it is assembly and only detects failure; the
    /// reason is then worked out by `_explainRejection`, off the hot path.
    function _verifySignatures(bytes32 digest, bytes calldata signatures) internal view {
        bool failed;
        uint256 t;
        uint256 halfN = SignatureLib.HALF_N;
        assembly ("memory-safe") {
            let size := codesize()
            codecopy(0x00, sub(size, 2), 2)
            let word := mload(0x00)
            t := byte(0, word)
            let n := byte(1, word)
            let cursor := mload(0x40)
            let validatorsEnd := add(cursor, mul(n, 20))
            codecopy(cursor, sub(sub(size, 2), mul(n, 20)), mul(n, 20))
            // ecrecover input at buf, output at buf + 0x80.
            let buf := validatorsEnd
            mstore(buf, digest)
            let out := add(buf, 0x80)
            let sig := signatures.offset
            let sigEnd := add(sig, mul(t, 65))
            failed := lt(signatures.length, mul(t, 65))
            for {} and(lt(sig, sigEnd), iszero(failed)) { sig := add(sig, 65) } {
                let s := calldataload(add(sig, 0x20))
                let v := byte(0, calldataload(add(sig, 0x40)))
                // s above n/2 or v outside {27, 28}.
                failed := or(gt(s, halfN), gt(sub(v, 27), 1))
                mstore(add(buf, 0x20), v)
                mstore(add(buf, 0x40), calldataload(sig))
                mstore(add(buf, 0x60), s)
                // An invalid signature returns nothing and leaves `out` zero.
                mstore(out, 0)
                pop(staticcall(gas(), 0x01, buf, 0x80, out, 0x20))
                let signer := mload(out)
                failed := or(failed, iszero(signer))
                // Advance through the list to this signer; running off its end fails.
                for {} 1 {} {
                    if iszero(lt(cursor, validatorsEnd)) {
                        failed := 1
                        break
                    }
                    let candidate := shr(96, mload(cursor))
                    cursor := add(cursor, 20)
                    if eq(candidate, signer) { break }
                }
            }
        }
        if (failed) _explainRejection(digest, signatures, t);
    }

    /// @dev Re-runs the check in plain Solidity and reverts with the first reason found.
    function _explainRejection(bytes32 digest, bytes calldata signatures, uint256 t)
        private
        view
    {
        if (signatures.length < t * 65) revert TooFewSignatures(signatures.length / 65, t);
        (uint256 ptr, uint256 n,) = _loadValidators();
        uint256 sig;
        assembly ("memory-safe") {
            sig := signatures.offset
        }
        uint256 j = 0;
        uint256 used = 0;
        for (uint256 i = 0; i < t; ++i) {
            address signer = SignatureLib.recoverAt(digest, sig + i * 65, i);
            while (j < n && _validatorAt(ptr, j) != signer) ++j;
            if (j == n) _rejectSigner(signer, ptr, n, used);
            used |= 1 << j;
            ++j;
        }
    }

    /// @dev Explains why `signer` did not match the rest of the list.
    function _rejectSigner(address signer, uint256 ptr, uint256 n, uint256 used) private pure {
        for (uint256 k = 0; k < n; ++k) {
            if (_validatorAt(ptr, k) == signer) {
                if (used & (1 << k) != 0) revert DuplicateSigner(signer);
                revert SignersOutOfOrder(signer);
            }
        }
        revert SignerNotValidator(signer);
    }

    /// @dev A zero root or the empty tree's root can hold no message.
    function _checkRoot(bytes32 root) internal pure {
        if (root == bytes32(0) || root == MerkleLib.EMPTY_ROOT) revert EmptyRoot(root);
    }
}
