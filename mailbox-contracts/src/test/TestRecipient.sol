// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {IMessageRecipient} from "../interfaces/IMessageRecipient.sol";
import {Owned} from "../libs/Owned.sol";

/// @title TestRecipient: records every message it handles
/// @notice Its ISM is settable by the owner (zero: the Mailbox default).
contract TestRecipient is IMessageRecipient, Owned {
    /// @notice Emitted for every handled message.
    event ReceivedMessage(uint32 indexed origin, bytes32 indexed sender, uint256 value, bytes body);

    /// @notice The ISM this recipient asks the Mailbox to use.
    IInterchainSecurityModule public interchainSecurityModule;
    /// @notice Number of messages handled.
    uint256 public handledCount;
    /// @notice Origin of the last message.
    uint32 public lastOrigin;
    /// @notice Sender of the last message.
    bytes32 public lastSender;
    /// @notice Body of the last message.
    bytes public lastBody;
    /// @notice Caller of the last `handle` (the Mailbox).
    address public lastCaller;

    /// @param initialOwner Owner allowed to set the ISM.
    constructor(address initialOwner) Owned(initialOwner) {}

    /// @notice Sets the ISM (zero: the Mailbox default).
    function setInterchainSecurityModule(address ism) external onlyOwner {
        interchainSecurityModule = IInterchainSecurityModule(ism);
    }

    /// @inheritdoc IMessageRecipient
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external payable {
        ++handledCount;
        lastOrigin = origin;
        lastSender = sender;
        lastBody = body;
        lastCaller = msg.sender;
        emit ReceivedMessage(origin, sender, msg.value, body);
    }
}
