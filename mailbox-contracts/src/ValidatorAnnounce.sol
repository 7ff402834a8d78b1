// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMailbox} from "./interfaces/IMailbox.sol";
import {CheckpointLib} from "./libs/CheckpointLib.sol";
import {SignatureLib} from "./libs/SignatureLib.sol";
import {TypeCasts} from "./libs/TypeCasts.sol";

/// @title ValidatorAnnounce: where each validator publishes its signed checkpoints (SPEC 4.4)
/// @notice Anyone may submit an announcement; the validator's signature over
/// eip191(keccak(keccak(be32(domain) || b32(mailbox) || "HYPERLANE_ANNOUNCEMENT") || location))
/// authenticates it. Each (validator, location) pair can be announced once.
contract ValidatorAnnounce {
    using TypeCasts for address;

    /// @notice Emitted for every accepted announcement.
    event ValidatorAnnouncement(address indexed validator, string storageLocation);

    /// @notice The Mailbox whose validators announce here.
    address public immutable mailbox;
    /// @notice The Mailbox's domain.
    uint32 public immutable localDomain;

    mapping(bytes32 => bool) private replayProtection;
    mapping(address => string[]) private storageLocations;
    address[] private validators;

    /// @param mailboxAddress The Mailbox whose validators announce here.
    constructor(address mailboxAddress) {
        mailbox = mailboxAddress;
        localDomain = IMailbox(mailboxAddress).localDomain();
    }

    /// @notice Records that `validator` publishes checkpoints at `storageLocation`.
    /// @param signature The validator's 65-byte signature over the announcement digest.
    function announce(address validator, string calldata storageLocation, bytes calldata signature)
        external
        returns (bool)
    {
        bytes32 replayId = keccak256(abi.encodePacked(validator, storageLocation));
        require(!replayProtection[replayId], "replay");
        replayProtection[replayId] = true;
        bytes32 digest = getAnnouncementDigest(storageLocation);
        require(SignatureLib.recover(digest, signature) == validator, "!signature");
        if (storageLocations[validator].length == 0) validators.push(validator);
        storageLocations[validator].push(storageLocation);
        emit ValidatorAnnouncement(validator, storageLocation);
        return true;
    }

    /// @notice Every location each of `validatorList` announced, oldest first.
    function getAnnouncedStorageLocations(address[] calldata validatorList)
        external
        view
        returns (string[][] memory out)
    {
        out = new string[][](validatorList.length);
        for (uint256 i = 0; i < validatorList.length; ++i) {
            out[i] = storageLocations[validatorList[i]];
        }
    }

    /// @notice Every validator that announced, in order of first announcement.
    function getAnnouncedValidators() external view returns (address[] memory) {
        return validators;
    }

    /// @notice The digest a validator signs to announce `storageLocation`.
    function getAnnouncementDigest(string memory storageLocation) public view returns (bytes32) {
        bytes32 domainHash = keccak256(
            abi.encodePacked(localDomain, mailbox.addressToBytes32(), "HYPERLANE_ANNOUNCEMENT")
        );
        return CheckpointLib.toEthSignedMessageHash(
            keccak256(abi.encodePacked(domainHash, storageLocation))
        );
    }
}
