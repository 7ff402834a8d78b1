// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Message recipient interface (`handle(uint32,bytes32,bytes)` = 0x56d5d475)
interface IMessageRecipient {
    /// @notice Called by the destination Mailbox once the message is verified.
    /// @param origin The origin domain.
    /// @param sender The sender on the origin, as bytes32.
    /// @param body The message body.
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external payable;
}
