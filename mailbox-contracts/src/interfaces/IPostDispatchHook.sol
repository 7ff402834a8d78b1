// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Post-dispatch hook interface
/// @notice `postDispatch(bytes,bytes)` = 0x086011b9, `quoteDispatch(bytes,bytes)` = 0xaaccd230.
interface IPostDispatchHook {
    /// @notice Hook type values, as in the v3 wire protocol.
    enum Types {
        UNUSED,
        ROUTING,
        AGGREGATION,
        MERKLE_TREE,
        INTERCHAIN_GAS_PAYMASTER,
        FALLBACK_ROUTING,
        ID_AUTH_ISM,
        PAUSABLE,
        PROTOCOL_FEE
    }

    /// @notice The hook type.
    function hookType() external view returns (uint8);

    /// @notice Whether the hook accepts this metadata (empty or StandardHookMetadata variant 1).
    function supportsMetadata(bytes calldata metadata) external view returns (bool);

    /// @notice Runs the hook for a message that the Mailbox is dispatching.
    function postDispatch(bytes calldata metadata, bytes calldata message) external payable;

    /// @notice The native value `postDispatch` needs for this message.
    function quoteDispatch(bytes calldata metadata, bytes calldata message)
        external
        view
        returns (uint256);
}
