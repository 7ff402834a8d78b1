// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Merkle multiproofs: many leaves of the depth-32 tree against one root
/// @notice Encoding: the leaves' indexes as uint32 big-endian, strictly ascending, one per
/// leaf in the order of the `leaves` array, then the sibling hashes the leaves cannot supply
/// themselves, 32 bytes each, in the order they are consumed: level 0 first, and within a
/// level from left to right. At each level the known nodes are walked in index order; a node
/// whose sibling is the next known node is hashed with it, any other node with the next
/// sibling from the proof. After 32 levels one node remains, the root. The proof must be
/// consumed exactly.
library MultiProofLib {
    /// @notice The proof is malformed: wrong length, or too few or too many siblings.
    error MalformedMultiProof();
    /// @notice Leaf indexes are not strictly ascending.
    error LeafIndexesNotAscending(uint256 position);

    /// @notice Root implied by `leaves` and `proof`; every index must be at most `maxIndex`.
    function root(bytes32[] calldata leaves, bytes calldata proof, uint256 maxIndex)
        internal
        pure
        returns (bytes32 out)
    {
        uint256 k = leaves.length;
        if (k == 0 || proof.length < k * 4 || (proof.length - k * 4) % 32 != 0) {
            revert MalformedMultiProof();
        }
        (uint256 idx, uint256 hashes) = _load(leaves, proof, maxIndex);
        bool ok;
        assembly ("memory-safe") {
            let sib := add(proof.offset, mul(k, 4))
            let sibEnd := add(proof.offset, proof.length)
            let len := k
            for { let level := 0 } lt(level, 32) { level := add(level, 1) } {
                let w := 0
                for { let i := 0 } lt(i, len) {} {
                    let a := mload(add(idx, shl(5, i)))
                    let h := mload(add(hashes, shl(5, i)))
                    let next := add(i, 1)
                    switch and(
                        and(iszero(and(a, 1)), lt(next, len)),
                        eq(mload(add(idx, shl(5, next))), add(a, 1))
                    )
                    case 1 {
                        mstore(0x00, h)
                        mstore(0x20, mload(add(hashes, shl(5, next))))
                        i := add(i, 2)
                    }
                    default {
                        // An overrun reads other calldata; the final position check rejects it.
                        let s := calldataload(sib)
                        sib := add(sib, 0x20)
                        let right := and(a, 1)
                        mstore(shl(5, right), h)
                        mstore(shl(5, iszero(right)), s)
                        i := next
                    }
                    mstore(add(idx, shl(5, w)), shr(1, a))
                    mstore(add(hashes, shl(5, w)), keccak256(0x00, 0x40))
                    w := add(w, 1)
                }
                len := w
            }
            ok := eq(sib, sibEnd)
            out := mload(hashes)
        }
        if (!ok) revert MalformedMultiProof();
    }

    /// @dev Copies indexes and leaves into memory, checking order and the index bound.
    function _load(bytes32[] calldata leaves, bytes calldata proof, uint256 maxIndex)
        private
        pure
        returns (uint256 idx, uint256 hashes)
    {
        uint256 k = leaves.length;
        assembly ("memory-safe") {
            idx := mload(0x40)
            hashes := add(idx, shl(5, k))
            mstore(0x40, add(hashes, shl(5, k)))
        }
        uint256 previous = 0;
        for (uint256 i = 0; i < k; ++i) {
            uint256 index = uint32(bytes4(proof[i * 4:i * 4 + 4]));
            if (i > 0 && index <= previous) revert LeafIndexesNotAscending(i);
            require(index <= maxIndex, "Invalid merkle index metadata");
            previous = index;
            bytes32 leaf = leaves[i];
            assembly ("memory-safe") {
                mstore(add(idx, shl(5, i)), index)
                mstore(add(hashes, shl(5, i)), leaf)
            }
        }
    }
}
