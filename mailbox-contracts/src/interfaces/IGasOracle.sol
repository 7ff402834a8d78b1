// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Gas oracle interface used by the InterchainGasPaymaster
interface IGasOracle {
    /// @notice Remote gas data: exchange rate (scaled by 1e10) and remote gas price.
    struct RemoteGasData {
        uint128 tokenExchangeRate;
        uint128 gasPrice;
    }

    /// @notice Returns the exchange rate and gas price for `destination`.
    function getExchangeRateAndGasPrice(uint32 destination)
        external
        view
        returns (uint128 tokenExchangeRate, uint128 gasPrice);
}
