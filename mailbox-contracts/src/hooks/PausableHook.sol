// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IPostDispatchHook} from "../interfaces/IPostDispatchHook.sol";
import {Pausable} from "../libs/Pausable.sol";
import {StandardHookMetadata} from "../libs/StandardHookMetadata.sol";

/// @title PausableHook: lets the owner stop all dispatches through it (hook type 7)
contract PausableHook is IPostDispatchHook, Pausable {
    /// @param initialOwner Owner allowed to pause.
    constructor(address initialOwner) Pausable(initialOwner) {}

    /// @inheritdoc IPostDispatchHook
    function hookType() external pure returns (uint8) {
        return uint8(Types.PAUSABLE);
    }

    /// @inheritdoc IPostDispatchHook
    function supportsMetadata(bytes calldata metadata) external pure returns (bool) {
        return StandardHookMetadata.isSupported(metadata);
    }

    /// @inheritdoc IPostDispatchHook
    function postDispatch(bytes calldata metadata, bytes calldata) external payable {
        StandardHookMetadata.requireSupported(metadata);
        _requireNotPaused();
    }

    /// @inheritdoc IPostDispatchHook
    function quoteDispatch(bytes calldata metadata, bytes calldata) external pure returns (uint256) {
        StandardHookMetadata.requireSupported(metadata);
        return 0;
    }
}
