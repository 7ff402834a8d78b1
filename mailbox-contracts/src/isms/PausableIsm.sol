// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {Pausable} from "../libs/Pausable.sol";

/// @title PausableIsm: accepts everything unless paused (module type 6, NULL)
/// @notice Meant as one member of an aggregation, so the owner can halt deliveries.
contract PausableIsm is IInterchainSecurityModule, Pausable {
    /// @param initialOwner Owner allowed to pause.
    constructor(address initialOwner) Pausable(initialOwner) {}

    /// @notice Module type NULL (needs no metadata).
    function moduleType() external pure returns (uint8) {
        return uint8(Types.NULL);
    }

    /// @notice True unless paused.
    function verify(bytes calldata, bytes calldata) external view returns (bool) {
        _requireNotPaused();
        return true;
    }
}
