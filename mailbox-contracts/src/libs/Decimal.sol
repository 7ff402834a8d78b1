// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Decimal text of unsigned integers, for revert messages that name a domain
library Decimal {
    /// @notice `value` in base 10.
    function toString(uint256 value) internal pure returns (string memory) {
        if (value == 0) return "0";
        uint256 len = 0;
        for (uint256 v = value; v != 0; v /= 10) ++len;
        bytes memory digits = new bytes(len);
        for (uint256 v = value; v != 0; v /= 10) digits[--len] = bytes1(uint8(48 + v % 10));
        return string(digits);
    }
}
