// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Incremental Merkle tree of depth 32 (deposit-contract style)
/// @notice Node hash is keccak256(left || right); leaves are message ids inserted as-is.
/// The empty subtree of height i hashes to Z[i], with Z[0] = 0 and Z[i+1] = H(Z[i], Z[i]).
library MerkleLib {
    /// @notice Tree depth.
    uint256 internal constant TREE_DEPTH = 32;
    /// @notice Maximum number of leaves.
    uint256 internal constant MAX_LEAVES = 2 ** 32 - 1;
    /// @notice Root of the empty tree, keccak(Z[31] || Z[31]).
    bytes32 internal constant EMPTY_ROOT =
        0x27ae5ba08d7291c96c8cbddcc148bf48a6d68c7974b94356f53754ef6171d757;

    /// @notice Inserts `node` as leaf number `size - 1`, where `size` is the count after
    /// insertion. The caller stores the count and checks it stays within MAX_LEAVES.
    function insert(bytes32[32] storage branch, uint256 size, bytes32 node) internal {
        assembly ("memory-safe") {
            let slot := branch.slot
            for {} 1 {} {
                if and(size, 1) {
                    sstore(slot, node)
                    break
                }
                mstore(0x00, sload(slot))
                mstore(0x20, node)
                node := keccak256(0x00, 0x40)
                size := shr(1, size)
                slot := add(slot, 1)
            }
        }
    }

    /// @notice Root of the tree holding `count` leaves.
    function root(bytes32[32] storage branch, uint256 count) internal view returns (bytes32 cur) {
        assembly ("memory-safe") {
            let zero := 0
            for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                switch and(shr(i, count), 1)
                case 1 {
                    mstore(0x00, sload(add(branch.slot, i)))
                    mstore(0x20, cur)
                }
                default {
                    mstore(0x00, cur)
                    mstore(0x20, zero)
                }
                cur := keccak256(0x00, 0x40)
                mstore(0x00, zero)
                mstore(0x20, zero)
                zero := keccak256(0x00, 0x40)
            }
        }
    }

    /// @notice Root implied by `leaf` at `index` with the 32 sibling hashes `proof`
    /// (level 0 first), read from calldata.
    function branchRoot(bytes32 leaf, bytes32[32] calldata proof, uint256 index)
        internal
        pure
        returns (bytes32 cur)
    {
        assembly ("memory-safe") {
            cur := leaf
            for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                let sibling := calldataload(add(proof, shl(5, i)))
                // bit i set: we are the right child.
                let right := and(shr(i, index), 1)
                mstore(shl(5, right), cur)
                mstore(shl(5, iszero(right)), sibling)
                cur := keccak256(0x00, 0x40)
            }
        }
    }
}
