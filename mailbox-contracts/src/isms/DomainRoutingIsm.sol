// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule} from "../interfaces/IInterchainSecurityModule.sol";
import {Decimal} from "../libs/Decimal.sol";
import {MessageLib} from "../libs/MessageLib.sol";
import {Owned} from "../libs/Owned.sol";

/// @title DomainRoutingIsm: picks the ISM by message origin (module type 1)
/// @notice `verify` forwards the same metadata to `route(message)`.
contract DomainRoutingIsm is IInterchainSecurityModule, Owned {
    using MessageLib for bytes;

    /// @notice Emitted when a domain's module changes (zero: removed).
    event ModuleSet(uint32 indexed domain, address module);

    /// @notice The domain and module lists differ in length.
    error LengthMismatch();

    /// @notice Module per origin domain.
    mapping(uint32 => IInterchainSecurityModule) public module;

    /// @param initialOwner Owner allowed to change routes.
    /// @param domains Origin domains.
    /// @param modules Their modules.
    constructor(address initialOwner, uint32[] memory domains, address[] memory modules)
        Owned(initialOwner)
    {
        if (domains.length != modules.length) revert LengthMismatch();
        for (uint256 i = 0; i < domains.length; ++i) {
            _set(domains[i], modules[i]);
        }
    }

    /// @notice Routes `domain` to `ism`.
    function set(uint32 domain, address ism) external onlyOwner {
        _set(domain, ism);
    }

    /// @notice Removes the route for `domain`.
    function remove(uint32 domain) external onlyOwner {
        _set(domain, address(0));
    }

    function _set(uint32 domain, address ism) private {
        module[domain] = IInterchainSecurityModule(ism);
        emit ModuleSet(domain, ism);
    }

    /// @notice Module type ROUTING.
    function moduleType() external pure returns (uint8) {
        return uint8(Types.ROUTING);
    }

    /// @notice The module for the message's origin; reverts if none.
    function route(bytes calldata message) public view returns (IInterchainSecurityModule ism) {
        message.checkLength();
        uint32 origin = message.origin();
        ism = module[origin];
        if (address(ism) == address(0)) {
            revert(string.concat("No ISM found for origin: ", Decimal.toString(origin)));
        }
    }

    /// @notice Verifies with the routed module.
    function verify(bytes calldata metadata, bytes calldata message) external returns (bool) {
        return route(message).verify(metadata, message);
    }
}
