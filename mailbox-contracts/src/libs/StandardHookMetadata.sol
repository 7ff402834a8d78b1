// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title StandardHookMetadata, variant 1 (SPEC 2.4)
/// @notice Packed: variant uint16 | msgValue uint256 | gasLimit uint256 | refundAddress (20).
/// Fields past the end of short metadata take the caller's default.
library StandardHookMetadata {
    /// @notice The only metadata variant hooks accept besides empty metadata.
    uint16 internal constant VARIANT = 1;

    /// @notice Empty metadata, or variant 1.
    function isSupported(bytes calldata metadata) internal pure returns (bool) {
        return metadata.length == 0
            || (metadata.length >= 2 && uint16(bytes2(metadata[0:2])) == VARIANT);
    }

    /// @notice Reverts with the v3 message unless `metadata` is supported.
    function requireSupported(bytes calldata metadata) internal pure {
        require(isSupported(metadata), "AbstractPostDispatchHook: invalid metadata variant");
    }

    /// @notice The gas limit, or `fallbackGasLimit` if absent.
    function gasLimit(bytes calldata metadata, uint256 fallbackGasLimit)
        internal
        pure
        returns (uint256)
    {
        if (metadata.length < 66) return fallbackGasLimit;
        return uint256(bytes32(metadata[34:66]));
    }

    /// @notice The refund address, or `fallbackAddress` if absent.
    function refundAddress(bytes calldata metadata, address fallbackAddress)
        internal
        pure
        returns (address)
    {
        if (metadata.length < 86) return fallbackAddress;
        return address(bytes20(metadata[66:86]));
    }
}
