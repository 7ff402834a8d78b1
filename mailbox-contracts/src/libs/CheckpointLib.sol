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
        uint32 origin,
        bytes32 merkleTreeHook,
        bytes32 checkpointRoot,
        uint32 checkpointIndex,
        bytes32 messageId
    ) internal pure returns (bytes32) {
        bytes32 signingHash = keccak256(
            abi.encodePacked(
                domainHash(origin, merkleTreeHook), checkpointRoot, checkpointIndex, messageId
            )
        );
        return toEthSignedMessageHash(signingHash);
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
