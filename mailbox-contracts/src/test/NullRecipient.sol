// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMessageRecipient} from "../interfaces/IMessageRecipient.sol";

/// @title NullRecipient: a `handle` that does nothing, for gas measurements
/// @notice It names no ISM, so the Mailbox's default ISM applies.
contract NullRecipient is IMessageRecipient {
    /// @inheritdoc IMessageRecipient
    function handle(uint32, bytes32, bytes calldata) external payable {}
}
