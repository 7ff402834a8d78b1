// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Owned} from "./Owned.sol";

/// @title Owner-controlled pause switch
abstract contract Pausable is Owned {
    /// @notice Emitted when paused.
    event Paused(address account);
    /// @notice Emitted when unpaused.
    event Unpaused(address account);

    /// @notice Whether the contract is paused.
    bool public paused;

    constructor(address initialOwner) Owned(initialOwner) {}

    /// @notice Pauses.
    function pause() external onlyOwner {
        paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Unpauses.
    function unpause() external onlyOwner {
        paused = false;
        emit Unpaused(msg.sender);
    }

    function _requireNotPaused() internal view {
        require(!paused, "Pausable: paused");
    }
}
