// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The part of the Mailbox that hooks and the ValidatorAnnounce read
interface IMailbox {
    /// @notice The domain of the chain this Mailbox is on.
    function localDomain() external view returns (uint32);

    /// @notice Id of the message most recently dispatched.
    function latestDispatchedId() external view returns (bytes32);
}
