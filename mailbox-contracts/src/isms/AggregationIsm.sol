// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";

/// @title AggregationIsm: m of n sub-modules must verify (module type 2)
/// @notice Metadata (SPEC 5.5): a header of 8 bytes per module, uint32 start and end offsets
/// into the whole metadata; start 0 skips the module. Exactly `threshold` modules must be
/// given metadata and verify: more than the threshold reverts, as in v3.
contract AggregationIsm is IInterchainSecurityModule {
    /// @notice Threshold is zero or above the number of modules.
    error InvalidThreshold(uint256 threshold, uint256 modules);
    /// @notice The metadata is shorter than its header or a range falls outside it.
    error MalformedMetadata();

    address[] private modules;
    /// @notice How many modules must verify.
    uint8 public immutable threshold;

    /// @param moduleList The sub-modules, in metadata header order.
    /// @param moduleThreshold How many must verify.
    constructor(address[] memory moduleList, uint8 moduleThreshold) {
        if (moduleThreshold == 0 || moduleThreshold > moduleList.length) {
            revert InvalidThreshold(moduleThreshold, moduleList.length);
        }
        modules = moduleList;
        threshold = moduleThreshold;
    }

    /// @notice Module type AGGREGATION.
    function moduleType() external pure returns (uint8) {
        return uint8(Types.AGGREGATION);
    }

    /// @notice The sub-modules and threshold (the message is ignored).
    function modulesAndThreshold(bytes calldata) external view returns (address[] memory, uint8) {
        return (modules, threshold);
    }

    /// @notice Verifies that exactly `threshold` sub-modules accept their metadata slices.
    function verify(bytes calldata metadata, bytes calldata message) external returns (bool) {
        address[] memory list = modules;
        uint8 remaining = threshold;
        if (metadata.length < list.length * 8) revert MalformedMetadata();
        for (uint256 i = 0; i < list.length; ++i) {
            uint256 start = uint32(bytes4(metadata[i * 8:i * 8 + 4]));
            if (start == 0) continue;
            uint256 end = uint32(bytes4(metadata[i * 8 + 4:i * 8 + 8]));
            if (start > end || end > metadata.length) revert MalformedMetadata();
            require(
                IInterchainSecurityModule(list[i]).verify(metadata[start:end], message), "!verify"
            );
            --remaining;
        }
        require(remaining == 0, "!threshold");
        return true;
    }
}
