// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Single-owner access control
abstract contract Owned {
    /// @notice Emitted when ownership moves from `previousOwner` to `newOwner`.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);

    /// @notice The owner.
    address public owner;

    constructor(address initialOwner) {
        owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice Hands ownership to `newOwner` (zero renounces it).
    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
