// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Multicall3: many calls in one, with the interface tools expect
/// @notice The ABI of the Multicall3 contract found at
/// 0xcA11bde05977b3631167028862bE2a173976CA11 on most EVM chains, so
/// agents, wallets and libraries that batch reads (and writes) through it
/// work unchanged. rollup-core genesis files predeploy it at that address.
/// @dev Calls run in order with this contract as `msg.sender`. A failed call
/// whose `allowFailure` is false (or any failure under `aggregate`) reverts
/// the whole batch with "Multicall3: call failed".
contract Multicall3 {
    struct Call {
        address target;
        bytes callData;
    }

    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Call3Value {
        address target;
        bool allowFailure;
        uint256 value;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Runs every call; any failure reverts the batch.
    function aggregate(Call[] calldata calls)
        public
        payable
        returns (uint256 blockNumber, bytes[] memory returnData)
    {
        blockNumber = block.number;
        returnData = new bytes[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool ok, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(ok, "Multicall3: call failed");
            returnData[i] = data;
        }
    }

    /// @notice Runs every call; a failure reverts only if `requireSuccess`.
    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        public
        payable
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool ok, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(ok || !requireSuccess, "Multicall3: call failed");
            returnData[i] = Result(ok, data);
        }
    }

    /// @notice `tryAggregate` with the block number and hash.
    function tryBlockAndAggregate(bool requireSuccess, Call[] calldata calls)
        public
        payable
        returns (uint256 blockNumber, bytes32 blockHash, Result[] memory returnData)
    {
        blockNumber = block.number;
        blockHash = blockhash(block.number);
        returnData = tryAggregate(requireSuccess, calls);
    }

    /// @notice `aggregate` with the block number and hash, every call required to succeed.
    function blockAndAggregate(Call[] calldata calls)
        external
        payable
        returns (uint256 blockNumber, bytes32 blockHash, Result[] memory returnData)
    {
        (blockNumber, blockHash, returnData) = tryBlockAndAggregate(true, calls);
    }

    /// @notice Runs every call; each says whether it may fail.
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            Call3 calldata c = calls[i];
            (bool ok, bytes memory data) = c.target.call(c.callData);
            require(ok || c.allowFailure, "Multicall3: call failed");
            returnData[i] = Result(ok, data);
        }
    }

    /// @notice `aggregate3` with a value sent along each call; the values
    /// must add up to exactly `msg.value`.
    function aggregate3Value(Call3Value[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        uint256 total = 0;
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            Call3Value calldata c = calls[i];
            total += c.value;
            (bool ok, bytes memory data) = c.target.call{value: c.value}(c.callData);
            require(ok || c.allowFailure, "Multicall3: call failed");
            returnData[i] = Result(ok, data);
        }
        require(msg.value == total, "Multicall3: value mismatch");
    }

    /// @notice Hash of block `blockNumber` (zero beyond the last 256).
    function getBlockHash(uint256 blockNumber) external view returns (bytes32) {
        return blockhash(blockNumber);
    }

    /// @notice Current block number.
    function getBlockNumber() external view returns (uint256) {
        return block.number;
    }

    /// @notice Current block's coinbase.
    function getCurrentBlockCoinbase() external view returns (address) {
        return block.coinbase;
    }

    /// @notice Current block's prevrandao (the old difficulty field).
    function getCurrentBlockDifficulty() external view returns (uint256) {
        return block.prevrandao;
    }

    /// @notice Current block's gas limit.
    function getCurrentBlockGasLimit() external view returns (uint256) {
        return block.gaslimit;
    }

    /// @notice Current block's timestamp.
    function getCurrentBlockTimestamp() external view returns (uint256) {
        return block.timestamp;
    }

    /// @notice Balance of `addr` in wei.
    function getEthBalance(address addr) external view returns (uint256) {
        return addr.balance;
    }

    /// @notice Hash of the previous block.
    function getLastBlockHash() external view returns (bytes32) {
        return blockhash(block.number - 1);
    }

    /// @notice Current block's base fee.
    function getBasefee() external view returns (uint256) {
        return block.basefee;
    }

    /// @notice The chain id.
    function getChainId() external view returns (uint256) {
        return block.chainid;
    }
}
