// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMailbox} from "../interfaces/IMailbox.sol";
import {IPostDispatchHook} from "../interfaces/IPostDispatchHook.sol";
import {MerkleLib} from "../libs/MerkleLib.sol";
import {MessageLib} from "../libs/MessageLib.sol";
import {StandardHookMetadata} from "../libs/StandardHookMetadata.sol";

/// @title MerkleTreeHook: inserts dispatched message ids into an incremental Merkle tree
/// @notice Hook type 3 (SPEC 3). Only the Mailbox's in-flight message can be inserted:
/// `postDispatch` requires `mailbox.latestDispatchedId() == keccak256(message)`, so the hook
/// can sit behind other hooks (aggregation, routing) and still never insert a forged leaf.
contract MerkleTreeHook is IPostDispatchHook {
    using MessageLib for bytes;

    /// @notice Emitted for every inserted message id with its leaf index.
    event InsertedIntoTree(bytes32 messageId, uint32 index);

    /// @notice Value was sent; the hook takes none.
    error NoValueExpected(uint256 value);

    /// @notice The Mailbox whose messages this tree holds.
    IMailbox public immutable mailbox;
    /// @notice The Mailbox's domain.
    uint32 public immutable localDomain;
    /// @notice Block in which this hook was deployed (for indexers).
    uint256 public immutable deployedBlock;

    uint256 private leafCount;
    bytes32[32] private branch;

    /// @param mailboxAddress The Mailbox this hook serves.
    constructor(address mailboxAddress) {
        mailbox = IMailbox(mailboxAddress);
        localDomain = IMailbox(mailboxAddress).localDomain();
        deployedBlock = block.number;
    }

    /// @inheritdoc IPostDispatchHook
    function hookType() external pure returns (uint8) {
        return uint8(Types.MERKLE_TREE);
    }

    /// @inheritdoc IPostDispatchHook
    function supportsMetadata(bytes calldata metadata) external pure returns (bool) {
        return StandardHookMetadata.isSupported(metadata);
    }

    /// @inheritdoc IPostDispatchHook
    function postDispatch(bytes calldata metadata, bytes calldata message) external payable {
        StandardHookMetadata.requireSupported(metadata);
        if (msg.value != 0) revert NoValueExpected(msg.value);
        bytes32 id = message.id();
        require(mailbox.latestDispatchedId() == id, "message not dispatching");
        uint256 index = leafCount;
        require(index < MerkleLib.MAX_LEAVES, "merkle tree full");
        leafCount = index + 1;
        MerkleLib.insert(branch, index + 1, id);
        emit InsertedIntoTree(id, uint32(index));
    }

    /// @inheritdoc IPostDispatchHook
    function quoteDispatch(bytes calldata metadata, bytes calldata) external pure returns (uint256) {
        StandardHookMetadata.requireSupported(metadata);
        return 0;
    }

    /// @notice Number of leaves.
    function count() external view returns (uint32) {
        return uint32(leafCount);
    }

    /// @notice Current root.
    function root() public view returns (bytes32) {
        return MerkleLib.root(branch, leafCount);
    }

    /// @notice Branch and count.
    function tree() external view returns (bytes32[32] memory, uint256) {
        return (branch, leafCount);
    }

    /// @notice (root, count - 1); reverts when the tree is empty.
    function latestCheckpoint() external view returns (bytes32, uint32) {
        return (root(), uint32(leafCount) - 1);
    }
}
