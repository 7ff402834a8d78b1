// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Merkle multiproofs: many leaves of the depth-32 tree against one root
/// @notice Encoding (the protocol crate's `BatchProof`): be16(k) || k x be32(index) ||
/// m x bytes32(sibling). Indexes are strictly ascending, one per leaf, in the order of the
/// leaves; every index is below the tree size `count`. Level by level from the leaves, for each
/// known node at position p (ascending): if p is even and the next known node is p + 1, the
/// two are hashed together; if p is even and the subtree at p + 1 starts at or beyond `count`,
/// the sibling is the zero hash of that height (not in the proof); otherwise the sibling is
/// the next hash of the proof. After 32 levels one node is left, the root. Every sibling
/// must be consumed.
library MultiProofLib {
    /// @notice The proof is malformed: wrong leaf count, truncated, or siblings left over
    /// or missing.
    error MalformedMultiProof();
    /// @notice Leaf indexes are not strictly ascending.
    error LeafIndexesNotAscending(uint256 position);

    /// @notice Root of the tree of `count` leaves implied by `leaves` and `proof`.
    function root(bytes32[] calldata leaves, bytes calldata proof, uint256 count)
        internal
        pure
        returns (bytes32)
    {
        uint256 ptr;
        assembly ("memory-safe") {
            ptr := leaves.offset
        }
        return _root(ptr, leaves.length, true, proof, count);
    }

    /// @notice As `root`, with the leaves in memory (read, not modified): the Mailbox
    /// computes them there.
    function rootInMemory(bytes32[] memory leaves, bytes calldata proof, uint256 count)
        internal
        pure
        returns (bytes32)
    {
        uint256 ptr;
        assembly ("memory-safe") {
            ptr := add(leaves, 0x20)
        }
        return _root(ptr, leaves.length, false, proof, count);
    }

    /// @dev `root` for the `k` leaves at `leaves`, in calldata or (`inCalldata` false) memory.
    function _root(uint256 leaves, uint256 k, bool inCalldata, bytes calldata proof, uint256 count)
        private
        pure
        returns (bytes32 out)
    {
        if (
            k == 0 || proof.length < 2 || uint16(bytes2(proof[0:2])) != k
                || proof.length < 2 + k * 4 || (proof.length - 2 - k * 4) % 32 != 0
        ) revert MalformedMultiProof();
        (uint256 idx, uint256 hashes) = _load(leaves, k, inCalldata, proof, count);
        uint256 sib;
        assembly ("memory-safe") {
            sib := add(proof.offset, add(2, mul(k, 4)))
        }
        uint256 consumedTo;
        (out, consumedTo) = _fold(idx, hashes, k, sib, count);
        // The cursor only grows; an overrun read other calldata and ends past the proof.
        if (consumedTo != proof.length + _offset(proof)) revert MalformedMultiProof();
    }

    function _offset(bytes calldata data) private pure returns (uint256 o) {
        assembly ("memory-safe") {
            o := data.offset
        }
    }

    /// @dev Hashes the known nodes up 32 levels, reading siblings from calldata at `sib`.
    /// Returns the root and the calldata position after the last sibling read.
    function _fold(uint256 idx, uint256 hashes, uint256 len, uint256 sib, uint256 count)
        private
        pure
        returns (bytes32 out, uint256)
    {
        assembly ("memory-safe") {
            let zero := 0
            for { let h := 0 } lt(h, 32) { h := add(h, 1) } {
                let w := 0
                for { let i := 0 } lt(i, len) {} {
                    let p := mload(add(idx, shl(5, i)))
                    let next := add(i, 1)
                    switch and(p, 1)
                    case 1 {
                        mstore(0x00, calldataload(sib))
                        mstore(0x20, mload(add(hashes, shl(5, i))))
                        sib := add(sib, 0x20)
                    }
                    default {
                        mstore(0x00, mload(add(hashes, shl(5, i))))
                        switch and(lt(next, len), eq(mload(add(idx, shl(5, next))), add(p, 1)))
                        case 1 {
                            mstore(0x20, mload(add(hashes, shl(5, next))))
                            next := add(next, 1)
                        }
                        default {
                            switch iszero(lt(shl(h, add(p, 1)), count))
                            case 1 { mstore(0x20, zero) }
                            default {
                                mstore(0x20, calldataload(sib))
                                sib := add(sib, 0x20)
                            }
                        }
                    }
                    mstore(add(idx, shl(5, w)), shr(1, p))
                    mstore(add(hashes, shl(5, w)), keccak256(0x00, 0x40))
                    w := add(w, 1)
                    i := next
                }
                len := w
                mstore(0x00, zero)
                mstore(0x20, zero)
                zero := keccak256(0x00, 0x40)
            }
            out := mload(hashes)
        }
        return (out, sib);
    }

    /// @dev Copies indexes and leaves into memory, checking order and that each is in the tree.
    function _load(uint256 leaves, uint256 k, bool inCalldata, bytes calldata proof, uint256 count)
        private
        pure
        returns (uint256 idx, uint256 hashes)
    {
        assembly ("memory-safe") {
            idx := mload(0x40)
            hashes := add(idx, shl(5, k))
            mstore(0x40, add(hashes, shl(5, k)))
        }
        uint256 previous = 0;
        for (uint256 i = 0; i < k; ++i) {
            uint256 pos = 2 + i * 4;
            uint256 index = uint32(bytes4(proof[pos:pos + 4]));
            if (i > 0 && index <= previous) revert LeafIndexesNotAscending(i);
            require(index < count, "Invalid merkle index metadata");
            previous = index;
            bytes32 leaf;
            assembly ("memory-safe") {
                switch inCalldata
                case 0 { leaf := mload(add(leaves, shl(5, i))) }
                default { leaf := calldataload(add(leaves, shl(5, i))) }
                mstore(add(idx, shl(5, i)), index)
                mstore(add(hashes, shl(5, i)), leaf)
            }
        }
    }
}
