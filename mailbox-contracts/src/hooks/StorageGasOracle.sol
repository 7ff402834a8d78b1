// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGasOracle} from "../interfaces/IGasOracle.sol";
import {Owned} from "../libs/Owned.sol";

/// @title StorageGasOracle: remote gas data set by its owner
contract StorageGasOracle is IGasOracle, Owned {
    /// @notice One remote domain's configuration.
    struct RemoteGasDataConfig {
        uint32 remoteDomain;
        uint128 tokenExchangeRate;
        uint128 gasPrice;
    }

    /// @notice Emitted when a remote domain's gas data changes.
    event RemoteGasDataSet(uint32 indexed remoteDomain, uint128 tokenExchangeRate, uint128 gasPrice);

    /// @notice Gas data per remote domain.
    mapping(uint32 => RemoteGasData) public remoteGasData;

    /// @param initialOwner The owner allowed to set gas data.
    constructor(address initialOwner) Owned(initialOwner) {}

    /// @inheritdoc IGasOracle
    function getExchangeRateAndGasPrice(uint32 destination)
        external
        view
        returns (uint128 tokenExchangeRate, uint128 gasPrice)
    {
        RemoteGasData memory data = remoteGasData[destination];
        return (data.tokenExchangeRate, data.gasPrice);
    }

    /// @notice Sets gas data for several remote domains.
    function setRemoteGasDataConfigs(RemoteGasDataConfig[] calldata configs) external onlyOwner {
        for (uint256 i = 0; i < configs.length; ++i) {
            RemoteGasDataConfig calldata c = configs[i];
            remoteGasData[c.remoteDomain] = RemoteGasData(c.tokenExchangeRate, c.gasPrice);
            emit RemoteGasDataSet(c.remoteDomain, c.tokenExchangeRate, c.gasPrice);
        }
    }
}
