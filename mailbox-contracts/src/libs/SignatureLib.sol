// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Strict recovery of 65-byte r || s || v secp256k1 signatures
/// @notice Rejects what an EOA signer never produces and what would make a signature
/// malleable: s in the upper half of the curve order, v outside {27, 28}, and any
/// signature that recovers to the zero address.
library SignatureLib {
    /// @notice s is above n/2 (a malleable twin of a low-s signature).
    error SignatureHighS(uint256 index);
    /// @notice v is not 27 or 28.
    error SignatureBadV(uint256 index);
    /// @notice Recovery failed or gave the zero address.
    error SignatureRecoversToZero(uint256 index);
    /// @notice A signature is not 65 bytes long.
    error SignatureBadLength(uint256 length);

    /// @dev secp256k1 n / 2.
    uint256 internal constant HALF_N =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice Recovers the signer of `digest` from the 65 bytes at calldata offset `ptr`.
    /// @param index Position reported in errors.
    function recoverAt(bytes32 digest, uint256 ptr, uint256 index)
        internal
        view
        returns (address signer)
    {
        uint256 r;
        uint256 s;
        uint256 v;
        assembly ("memory-safe") {
            r := calldataload(ptr)
            s := calldataload(add(ptr, 0x20))
            v := byte(0, calldataload(add(ptr, 0x40)))
        }
        if (s > HALF_N) revert SignatureHighS(index);
        if (v != 27 && v != 28) revert SignatureBadV(index);
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, digest)
            mstore(add(p, 0x20), v)
            mstore(add(p, 0x40), r)
            mstore(add(p, 0x60), s)
            // On failure the precompile returns nothing; treat that as the zero address.
            let ok := staticcall(gas(), 0x01, p, 0x80, p, 0x20)
            signer := mul(mload(p), and(ok, eq(returndatasize(), 0x20)))
        }
        if (signer == address(0)) revert SignatureRecoversToZero(index);
    }

    /// @notice Recovers the signer of `digest` from a 65-byte calldata signature.
    function recover(bytes32 digest, bytes calldata signature) internal view returns (address) {
        if (signature.length != 65) revert SignatureBadLength(signature.length);
        uint256 ptr;
        assembly ("memory-safe") {
            ptr := signature.offset
        }
        return recoverAt(digest, ptr, 0);
    }
}
