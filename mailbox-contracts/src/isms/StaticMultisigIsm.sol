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
    /// come from validators, in list order, each at most once. The loop is assembly: it
    /// runs once per signature on every delivery. On failure it records what failed and
    /// the Solidity code after it reverts with the reason.
    function _verifySignatures(bytes32 digest, bytes calldata signatures) internal view {
        uint256 failure; // 0 ok, 1 too few, 2 high s, 3 bad v, 4 zero signer, 5 no match
        uint256 detail;
        uint256 used;
        uint256 t;
        uint256 halfN = SignatureLib.HALF_N;
        assembly ("memory-safe") {
            let size := codesize()
            codecopy(0x00, sub(size, 2), 2)
            let word := mload(0x00)
            t := byte(0, word)
            let n := byte(1, word)
            let validators := mload(0x40)
            codecopy(validators, sub(sub(size, 2), mul(n, 20)), mul(n, 20))
            let buf := add(validators, mul(n, 20))
            switch lt(signatures.length, mul(t, 65))
            case 1 {
                failure := 1
                detail := div(signatures.length, 65)
            }
            default {
                let j := 0
                let sig := signatures.offset
                for { let i := 0 } lt(i, t) { i := add(i, 1) } {
                    let r := calldataload(sig)
                    let s := calldataload(add(sig, 0x20))
                    let v := byte(0, calldataload(add(sig, 0x40)))
                    sig := add(sig, 65)
                    detail := i
                    if gt(s, halfN) {
                        failure := 2
                        break
                    }
                    if iszero(or(eq(v, 27), eq(v, 28))) {
                        failure := 3
                        break
                    }
                    mstore(buf, digest)
                    mstore(add(buf, 0x20), v)
                    mstore(add(buf, 0x40), r)
                    mstore(add(buf, 0x60), s)
                    let ok := staticcall(gas(), 0x01, buf, 0x80, buf, 0x20)
                    // Nothing returned (invalid signature) counts as the zero address.
                    let signer := mul(mload(buf), and(ok, eq(returndatasize(), 0x20)))
                    if iszero(signer) {
                        failure := 4
                        break
                    }
                    for {} and(lt(j, n), iszero(eq(shr(96, mload(add(validators, mul(j, 20)))), signer))) {
                        j := add(j, 1)
                    } {}
                    if eq(j, n) {
                        failure := 5
                        detail := signer
                        break
                    }
                    used := or(used, shl(j, 1))
                    j := add(j, 1)
                }
            }
        }
        if (failure != 0) _reject(failure, detail, used, t);
    }

    function _reject(uint256 failure, uint256 detail, uint256 used, uint256 t) private pure {
        if (failure == 1) revert TooFewSignatures(detail, t);
        if (failure == 2) revert SignatureLib.SignatureHighS(detail);
        if (failure == 3) revert SignatureLib.SignatureBadV(detail);
        if (failure == 4) revert SignatureLib.SignatureRecoversToZero(detail);
        (uint256 ptr, uint256 n,) = _loadValidators();
        _rejectSigner(address(uint160(detail)), ptr, n, used);
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
