// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Checkpoint digests signed by validators (SPEC 4.1)
library CheckpointLib {
    /// @notice keccak(be32(origin) || merkleTreeHook || "HYPERLANE").
    function domainHash(uint32 origin, bytes32 merkleTreeHook) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(origin, merkleTreeHook, "HYPERLANE"));
    }

    /// @notice eip191(keccak(domainHash || root || be32(index) || messageId)).
    function digest(
        uint32 originDomain,
        bytes32 merkleTreeHook,
        bytes32 checkpointRoot,
        uint32 checkpointIndex,
        bytes32 messageId
    ) internal pure returns (bytes32 out) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, shl(224, originDomain))
            mstore(add(p, 4), merkleTreeHook)
            mstore(add(p, 36), "HYPERLANE")
            let domain := keccak256(p, 45)
            mstore(p, domain)
            mstore(add(p, 32), checkpointRoot)
            mstore(add(p, 64), shl(224, checkpointIndex))
            mstore(add(p, 68), messageId)
            let signingHash := keccak256(p, 100)
            mstore(0x00, "\x19Ethereum Signed Message:\n32")
            mstore(0x1c, signingHash)
            out := keccak256(0x00, 0x3c)
        }
    }

    /// @notice keccak("\x19Ethereum Signed Message:\n32" || hash).
    function toEthSignedMessageHash(bytes32 hash) internal pure returns (bytes32 out) {
        assembly ("memory-safe") {
            mstore(0x00, "\x19Ethereum Signed Message:\n32")
            mstore(0x1c, hash)
            out := keccak256(0x00, 0x3c)
        }
    }
}
