// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Conversions between EVM addresses and 32-byte protocol addresses
library TypeCasts {
    /// @notice The upper 12 bytes of a 32-byte address are not zero.
    error NotAnEvmAddress(bytes32 value);

    /// @notice Left-pads an address to 32 bytes.
    function addressToBytes32(address a) internal pure returns (bytes32) {
        return bytes32(uint256(uint160(a)));
    }

    /// @notice The address in the low 20 bytes; reverts if the upper 12 are not zero.
    function bytes32ToAddress(bytes32 b) internal pure returns (address) {
        if (uint256(b) >> 160 != 0) revert NotAnEvmAddress(b);
        return address(uint160(uint256(b)));
    }
}
