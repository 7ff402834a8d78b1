// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {StaticMerkleRootMultisigIsm} from "./StaticMerkleRootMultisigIsm.sol";
import {StaticMessageIdMultisigIsm} from "./StaticMessageIdMultisigIsm.sol";

/// @title Deploys static multisig ISMs at deterministic addresses
/// @notice Creation code = loader (11 bytes) || ISM runtime || validators (20 bytes each) ||
/// threshold (1) || count (1); the loader returns everything after itself as the runtime code.
/// The ISM is created with CREATE2 and salt zero, so its address is a function of the factory,
/// the ISM code, the ordered validator list and the threshold. Deploying an existing set
/// returns the existing address.
abstract contract StaticMultisigIsmFactory {
    /// @dev codesize - 11 | dup | push 11 | push0 | codecopy | push0 | return.
    bytes11 private constant LOADER = 0x600b380380600b5f395ff3;

    /// @notice Emitted when a new ISM is created.
    event ModuleDeployed(address module);

    /// @notice Threshold is zero or above the number of validators.
    error InvalidThreshold(uint256 threshold, uint256 validators);
    /// @notice More than 255 validators.
    error TooManyValidators(uint256 validators);
    /// @notice A validator is the zero address.
    error ZeroValidator(uint256 index);
    /// @notice A validator appears twice.
    error DuplicateValidator(address validator);
    /// @notice CREATE2 failed.
    error DeployFailed();

    /// @dev The runtime code of the ISM this factory deploys.
    function _runtimeCode() internal pure virtual returns (bytes memory);

    /// @notice Deploys (or returns) the ISM for `validators` (in this order) and `threshold`.
    function deploy(address[] calldata validators, uint8 threshold) external returns (address ism) {
        bytes memory code = _creationCode(validators, threshold);
        ism = _predict(code);
        if (ism.code.length != 0) return ism;
        address created;
        assembly ("memory-safe") {
            created := create2(0, add(code, 0x20), mload(code), 0)
        }
        if (created != ism) revert DeployFailed();
        emit ModuleDeployed(ism);
    }

    /// @notice The address `deploy(validators, threshold)` gives.
    function getAddress(address[] calldata validators, uint8 threshold)
        external
        view
        returns (address)
    {
        return _predict(_creationCode(validators, threshold));
    }

    function _predict(bytes memory code) private view returns (address) {
        bytes32 h = keccak256(abi.encodePacked(bytes1(0xff), address(this), bytes32(0), keccak256(code)));
        return address(uint160(uint256(h)));
    }

    function _creationCode(address[] calldata validators, uint8 threshold)
        private
        pure
        returns (bytes memory)
    {
        uint256 n = validators.length;
        if (n > 255) revert TooManyValidators(n);
        if (threshold == 0 || threshold > n) revert InvalidThreshold(threshold, n);
        for (uint256 i = 0; i < n; ++i) {
            if (validators[i] == address(0)) revert ZeroValidator(i);
            for (uint256 j = 0; j < i; ++j) {
                if (validators[j] == validators[i]) revert DuplicateValidator(validators[i]);
            }
        }
        // abi.encodePacked pads array elements to 32 bytes; the tail wants 20 each.
        bytes memory packed = new bytes(n * 20);
        for (uint256 i = 0; i < n; ++i) {
            address v = validators[i];
            assembly ("memory-safe") {
                mstore(add(add(packed, 0x20), mul(i, 20)), shl(96, v))
            }
        }
        return abi.encodePacked(LOADER, _runtimeCode(), packed, threshold, uint8(n));
    }
}

/// @title Factory of StaticMessageIdMultisigIsm
contract StaticMessageIdMultisigIsmFactory is StaticMultisigIsmFactory {
    function _runtimeCode() internal pure override returns (bytes memory) {
        return type(StaticMessageIdMultisigIsm).runtimeCode;
    }
}

/// @title Factory of StaticMerkleRootMultisigIsm
contract StaticMerkleRootMultisigIsmFactory is StaticMultisigIsmFactory {
    function _runtimeCode() internal pure override returns (bytes memory) {
        return type(StaticMerkleRootMultisigIsm).runtimeCode;
    }
}
