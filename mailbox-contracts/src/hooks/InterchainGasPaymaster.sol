// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGasOracle} from "../interfaces/IGasOracle.sol";
import {IPostDispatchHook} from "../interfaces/IPostDispatchHook.sol";
import {Decimal} from "../libs/Decimal.sol";
import {MessageLib} from "../libs/MessageLib.sol";
import {Owned} from "../libs/Owned.sol";
import {StandardHookMetadata} from "../libs/StandardHookMetadata.sol";
import {TypeCasts} from "../libs/TypeCasts.sol";

/// @title InterchainGasPaymaster: takes payment for destination gas (SPEC 6)
/// @notice quote = (overhead + gasLimit) * gasPrice * tokenExchangeRate / 1e10 as a hook,
/// and gasLimit * gasPrice * tokenExchangeRate / 1e10 through `payForGas`. Overpayment is
/// refunded in the same call; the `GasPayment` event reports the quote, not msg.value.
contract InterchainGasPaymaster is IPostDispatchHook, Owned {
    using MessageLib for bytes;
    using TypeCasts for bytes32;

    /// @notice Scale of oracle exchange rates.
    uint256 internal constant TOKEN_EXCHANGE_RATE_SCALE = 1e10;
    /// @notice Gas limit used when hook metadata gives none.
    uint256 public constant DEFAULT_GAS_USAGE = 50_000;

    /// @notice Oracle and overhead for one destination.
    struct DomainGasConfig {
        IGasOracle gasOracle;
        uint96 gasOverhead;
    }

    /// @notice A destination and its configuration, for `setDestinationGasConfigs`.
    struct GasParam {
        uint32 remoteDomain;
        DomainGasConfig config;
    }

    /// @notice Emitted for every payment.
    event GasPayment(
        bytes32 indexed messageId, uint32 indexed destinationDomain, uint256 gasAmount, uint256 payment
    );
    /// @notice Emitted when a destination's configuration changes.
    event DestinationGasConfigSet(uint32 remoteDomain, address gasOracle, uint96 gasOverhead);
    /// @notice Emitted when the beneficiary changes.
    event BeneficiarySet(address beneficiary);

    /// @notice A refund was due but the refund address is zero.
    error ZeroRefundAddress();
    /// @notice Sending value failed.
    error TransferFailed(address to, uint256 amount);

    /// @notice Configuration per destination.
    mapping(uint32 => DomainGasConfig) public destinationGasConfigs;
    /// @notice Receiver of `claim`.
    address public beneficiary;

    /// @param initialOwner Owner allowed to configure destinations.
    /// @param initialBeneficiary Receiver of claimed payments.
    constructor(address initialOwner, address initialBeneficiary) Owned(initialOwner) {
        beneficiary = initialBeneficiary;
        emit BeneficiarySet(initialBeneficiary);
    }

    /// @notice Sets oracle and overhead for several destinations.
    function setDestinationGasConfigs(GasParam[] calldata params) external onlyOwner {
        for (uint256 i = 0; i < params.length; ++i) {
            GasParam calldata p = params[i];
            destinationGasConfigs[p.remoteDomain] = p.config;
            emit DestinationGasConfigSet(p.remoteDomain, address(p.config.gasOracle), p.config.gasOverhead);
        }
    }

    /// @notice Sets the receiver of `claim`.
    function setBeneficiary(address newBeneficiary) external onlyOwner {
        beneficiary = newBeneficiary;
        emit BeneficiarySet(newBeneficiary);
    }

    /// @notice Sends the whole balance to the beneficiary.
    function claim() external {
        _send(beneficiary, address(this).balance);
    }

    /// @notice Price of `gasLimit` gas on `destination`, in local native units.
    function quoteGasPayment(uint32 destination, uint256 gasLimit) public view returns (uint256) {
        IGasOracle oracle = destinationGasConfigs[destination].gasOracle;
        if (address(oracle) == address(0)) {
            revert(string.concat("Configured IGP doesn't support domain ", Decimal.toString(destination)));
        }
        (uint128 rate, uint128 price) = oracle.getExchangeRateAndGasPrice(destination);
        return gasLimit * price * rate / TOKEN_EXCHANGE_RATE_SCALE;
    }

    /// @notice Overhead plus `gasLimit` for `destination`.
    function destinationGasLimit(uint32 destination, uint256 gasLimit) public view returns (uint256) {
        return destinationGasConfigs[destination].gasOverhead + gasLimit;
    }

    /// @notice Pays for `gasLimit` gas for message `id`; refunds overpayment to `refundAddress`.
    function payForGas(bytes32 id, uint32 destination, uint256 gasLimit, address refundAddress)
        public
        payable
    {
        uint256 payment = quoteGasPayment(destination, gasLimit);
        require(msg.value >= payment, "IGP: insufficient interchain gas payment");
        uint256 overpayment = msg.value - payment;
        if (overpayment > 0) {
            if (refundAddress == address(0)) revert ZeroRefundAddress();
            _send(refundAddress, overpayment);
        }
        emit GasPayment(id, destination, gasLimit, payment);
    }

    /// @inheritdoc IPostDispatchHook
    function hookType() external pure returns (uint8) {
        return uint8(Types.INTERCHAIN_GAS_PAYMASTER);
    }

    /// @inheritdoc IPostDispatchHook
    function supportsMetadata(bytes calldata metadata) external pure returns (bool) {
        return StandardHookMetadata.isSupported(metadata);
    }

    /// @inheritdoc IPostDispatchHook
    function postDispatch(bytes calldata metadata, bytes calldata message) external payable {
        StandardHookMetadata.requireSupported(metadata);
        MessageLib.checkLength(message);
        uint32 destination = message.destination();
        uint256 gasLimit = destinationGasLimit(
            destination, StandardHookMetadata.gasLimit(metadata, DEFAULT_GAS_USAGE)
        );
        address refund =
            StandardHookMetadata.refundAddress(metadata, message.sender().bytes32ToAddress());
        payForGas(message.id(), destination, gasLimit, refund);
    }

    /// @inheritdoc IPostDispatchHook
    function quoteDispatch(bytes calldata metadata, bytes calldata message)
        external
        view
        returns (uint256)
    {
        StandardHookMetadata.requireSupported(metadata);
        MessageLib.checkLength(message);
        uint32 destination = message.destination();
        return quoteGasPayment(
            destination,
            destinationGasLimit(destination, StandardHookMetadata.gasLimit(metadata, DEFAULT_GAS_USAGE))
        );
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
