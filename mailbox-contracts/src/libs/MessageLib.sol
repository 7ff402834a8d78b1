// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Field access for v3 messages held in calldata (SPEC 1)
/// @notice Layout: version(1) nonce(4) origin(4) sender(32) destination(4) recipient(32) body.
library MessageLib {
    /// @notice Header length; shorter messages are malformed.
    uint256 internal constant HEADER_LEN = 77;

    /// @notice The message is shorter than its 77-byte header.
    error MessageTooShort(uint256 length);

    /// @notice Reverts unless `message` holds a full header.
    function checkLength(bytes calldata message) internal pure {
        if (message.length < HEADER_LEN) revert MessageTooShort(message.length);
    }

    /// @notice Version byte.
    function version(bytes calldata message) internal pure returns (uint8) {
        return uint8(bytes1(message[0:1]));
    }

    /// @notice Nonce on the origin Mailbox.
    function nonce(bytes calldata message) internal pure returns (uint32) {
        return uint32(bytes4(message[1:5]));
    }

    /// @notice Origin domain.
    function origin(bytes calldata message) internal pure returns (uint32) {
        return uint32(bytes4(message[5:9]));
    }

    /// @notice Sender as bytes32.
    function sender(bytes calldata message) internal pure returns (bytes32) {
        return bytes32(message[9:41]);
    }

    /// @notice Destination domain.
    function destination(bytes calldata message) internal pure returns (uint32) {
        return uint32(bytes4(message[41:45]));
    }

    /// @notice Recipient as bytes32.
    function recipient(bytes calldata message) internal pure returns (bytes32) {
        return bytes32(message[45:77]);
    }

    /// @notice Body (everything after the header).
    function body(bytes calldata message) internal pure returns (bytes calldata) {
        return message[HEADER_LEN:];
    }

    /// @notice keccak256 of the message, its id.
    function id(bytes calldata message) internal pure returns (bytes32 out) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, message.offset, message.length)
            out := keccak256(p, message.length)
        }
    }
}
