// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInterchainSecurityModule, IBatchInterchainSecurityModule} from
    "./interfaces/IInterchainSecurityModule.sol";
import {IMessageRecipient} from "./interfaces/IMessageRecipient.sol";
import {MultisigLib} from "./libs/MultisigLib.sol";
import {IPostDispatchHook} from "./interfaces/IPostDispatchHook.sol";
import {MerkleLib} from "./libs/MerkleLib.sol";
import {MessageLib} from "./libs/MessageLib.sol";
import {Owned} from "./libs/Owned.sol";
import {StandardHookMetadata} from "./libs/StandardHookMetadata.sol";
import {TypeCasts} from "./libs/TypeCasts.sol";

/// @title Mailbox functions answered by the Mailbox's fallback
/// @notice solc dispatches external functions by comparing the selector with each one in
/// increasing order, about 22 gas a comparison. These functions are rarely or never called
/// on-chain and their selectors sort below `process(bytes,bytes)` (0x7c39d130), so the
/// Mailbox serves them from its fallback instead, and every delivery reaches `process` ten
/// comparisons sooner. `build.js` adds this interface's ABI to the Mailbox artifact, so the
/// Mailbox's ABI lists them as functions; the fallback accepts exactly these selectors
/// (with value only for the payable `postDispatch`, which then reverts with
/// `TreeHookTakesNoValue` as before) and reverts on anything else, as a contract without a
/// fallback would.
interface IMailboxFallback {
    /// @notice Number of leaves in the embedded tree.
    function count() external view returns (uint32);
    /// @notice The embedded tree as a hook (IPostDispatchHook.postDispatch): inserts the
    /// in-flight message, for use of this Mailbox as a hook inside another hook (for example
    /// an aggregation hook); takes no value.
    function postDispatch(bytes calldata metadata, bytes calldata message) external payable;
    /// @notice Hook used when a dispatch names none (this Mailbox: the embedded tree).
    function defaultHook() external view returns (address);
    /// @notice ISM used for recipients that do not name one.
    function defaultIsm() external view returns (IInterchainSecurityModule);
    /// @notice The embedded ISM's module type, chosen at construction: MERKLE_ROOT_MULTISIG
    /// (4) or MESSAGE_ID_MULTISIG (5); UNUSED (0) when the Mailbox was built without a set.
    function moduleType() external view returns (uint8);
    /// @notice Block in which message `id` was delivered (zero if not delivered).
    function processedAt(bytes32 id) external view returns (uint48);
    /// @notice Who delivered message `id` (zero if not delivered).
    function processor(bytes32 id) external view returns (address);
    /// @notice Sets the required hook (must have code, or zero for none); owner only.
    function setRequiredHook(address hook) external;
    /// @notice The embedded ISM's validators and threshold (the message is ignored); an
    /// empty set and zero when the Mailbox was built without one.
    function validatorsAndThreshold(bytes calldata)
        external
        view
        returns (address[] memory validators, uint8 threshold);
    /// @notice The embedded MerkleRoot ISM's batch check, as
    /// `StaticMerkleRootMultisigIsm.verifyBatch` (same metadata, checks and errors); reverts
    /// with `EmbeddedIsmNotMerkleRoot` when the embedded ISM is not of type 4.
    function verifyBatch(bytes calldata metadata, uint32 origin, bytes32[] calldata ids)
        external
        view
        returns (bool);
}

/// @title The Mailbox's `process`, served under another name (see `Mailbox.process_IyJOut`)
interface IMailboxProcess {
    /// @notice Delivers `message` if the recipient's ISM accepts `metadata`.
    function process(bytes calldata metadata, bytes calldata message) external payable;
}

/// @title Mailbox: sends and delivers Hyperlane v3 messages
/// @notice ABI, events and message format are those of the v3 Mailbox (SPEC 2). Two
/// additions, both opt-in:
///
/// 1. An embedded Merkle tree hook. When the hook chosen for a dispatch (the default hook,
///    or the custom hook argument) is this Mailbox itself, the message id is inserted into a
///    tree kept in this contract, which then plays the MerkleTreeHook role: it emits
///    `InsertedIntoTree` and serves `count`, `root`, `tree` and `latestCheckpoint`, and
///    validators sign checkpoints with this Mailbox's address as the merkle tree hook. The
///    tree count shares a storage slot with the nonce and the default hook, which is what
///    makes a dispatch cheaper than calling a separate MerkleTreeHook.
/// 2. Batch delivery (`processBatch`): one threshold signature set over a checkpoint and one
///    Merkle multiproof deliver many messages from one origin in one transaction.
/// 3. An embedded multisig ISM, MessageId (module type 5) or MerkleRoot (module type 4), as
///    the deployer chooses. A validator set, threshold and module type given to the
///    constructor are kept in immutables; the Mailbox then answers `moduleType`,
///    `validatorsAndThreshold` and `verify` (and, as type 4, `verifyBatch`) exactly as a
///    `StaticMessageIdMultisigIsm` or `StaticMerkleRootMultisigIsm` for the same set would
///    (same metadata, same digest, same checks, same errors: both run the same
///    `MultisigLib` function). When the ISM that `recipientIsm` names is this Mailbox (set
///    it as the default ISM, or a recipient names it), `process` verifies in place, which
///    saves a cold account access, a call and a second hashing of the message; as type 4,
///    `processBatch` verifies in place too. A Mailbox built without a set (module type 0)
///    rejects everything through its `verify` and refuses itself as the default ISM.
///
/// A zero required hook means "no required hook" (the call is skipped).
///
/// Replay protection and its safety argument. Every delivery, by `process` (written out in
/// place) or by `processBatch` (through `_markDelivered`), reads and writes the one record of
/// its message id (keccak256 of the whole message), kept at storage slot `id`, and reverts
/// if it is already set. Each delivery sets its record before the ISM's state-changing `verify` and
/// before the recipient's `handle` run (the ISM lookup and `verifyBatch` before it are static
/// calls, or, for the embedded ISM, view code run in place; the embedded `verify` is view
/// code too). Hence, within a transaction, any later delivery of the same id, whether re-entrant
/// from a `handle`, a later item of the same batch, or the other path, finds the record and
/// reverts; across transactions the record persists; and a reverted delivery rolls its record
/// back together with its effects. So each message id is delivered at most once across both
/// paths, and `delivered(id)` is true exactly for the ids delivered by either path.
///
/// Why not a bitmap. A per-origin bitmap keyed by nonce or leaf index packs 256 deliveries
/// into a slot and would make replay protection much cheaper, and both paths could share it.
/// But `delivered(bytes32)` is given only the id, from which neither nonce nor leaf index can
/// be recovered; whatever answers it exactly must be found from the id alone, which for
/// uniformly random ids costs one fresh storage slot per delivered message. A bitmap beside
/// the record would add cost without adding protection; a bitmap instead of it would make
/// `delivered(id)` wrong for batch-delivered messages (and relayers that rely on it would
/// retry them forever). This contract therefore keeps one record per id and pays for it
/// (about 22.1k gas per message, on both paths).
///
/// Batch security. `processBatch` accepts a message only if its recipient's ISM, as
/// `recipientIsm` reports it, is the ISM that verified the batch, so no message is ever held
/// to a weaker ISM than `process` would apply. When that ISM is this Mailbox, the batch is
/// verified in place by the embedded MerkleRoot ISM (the same check its `verifyBatch`
/// answers), and an embedded MessageId ISM, which cannot verify batches, refuses it.
contract Mailbox is Owned {
    using MessageLib for bytes;
    using TypeCasts for address;
    using TypeCasts for bytes32;

    /// @notice Message format version.
    uint8 public constant VERSION = 3;

    /// @notice Emitted when a message is dispatched.
    event Dispatch(
        address indexed sender, uint32 indexed destination, bytes32 indexed recipient, bytes message
    );
    /// @notice Emitted with the id of each dispatched message.
    event DispatchId(bytes32 indexed messageId);
    /// @notice Emitted when a message is delivered.
    event Process(uint32 indexed origin, bytes32 indexed sender, address indexed recipient);
    /// @notice Emitted with the id of each delivered message.
    event ProcessId(bytes32 indexed messageId);
    /// @notice Emitted when the default ISM changes.
    event DefaultIsmSet(address indexed module);
    /// @notice Emitted when the default hook changes.
    event DefaultHookSet(address indexed hook);
    /// @notice Emitted when the required hook changes.
    event RequiredHookSet(address indexed hook);
    /// @notice Emitted when a message id is inserted into the embedded tree.
    event InsertedIntoTree(bytes32 messageId, uint32 index);

    /// @notice `initialize` was called twice, or not by the deployer.
    error AlreadyInitialized();
    /// @notice A module or hook address has no code.
    error NotAContract(address target);
    /// @notice Value was sent to the embedded tree hook, which takes none.
    error TreeHookTakesNoValue(uint256 value);
    /// @notice The recipient has no code, so it cannot handle the message.
    error RecipientNotAContract(address recipient);
    /// @notice A batch held no messages.
    error EmptyBatch();
    /// @notice A batch message's origin differs from the first message's.
    error BatchOriginMismatch(uint256 index);
    /// @notice A batch message's recipient uses another ISM than the batch ISM.
    error BatchIsmMismatch(uint256 index, address ism);
    /// @notice The embedded validator set is malformed (see the constructor).
    error InvalidValidatorSet();
    /// @notice The embedded module type is not 4 (MerkleRoot) or 5 (MessageId) for a
    /// validator set, or not 0 without one.
    error InvalidEmbeddedModuleType(uint8 moduleType);
    /// @notice A batch was to be verified by the embedded ISM, which is not a MerkleRoot ISM.
    error EmbeddedIsmNotMerkleRoot();

    /// @notice Most validators the embedded ISM can hold (16 words of 20-byte addresses).
    uint256 public constant MAX_EMBEDDED_VALIDATORS = 25;

    /// @notice The domain of this chain.
    uint32 public immutable localDomain;
    /// @notice Block in which this Mailbox was deployed (for indexers).
    uint256 public immutable deployedBlock;
    address private immutable deployer;

    // Embedded ISM: threshold | count << 8, and the validators packed 20 bytes each into
    // 16 words (zero past the last validator).
    uint256 private immutable ismSize;
    // Embedded ISM module type: MERKLE_ROOT, MESSAGE_ID, or 0 without a set.
    uint8 private immutable ismType;
    // What `process` compares the ISM that `recipientIsm` names with: this Mailbox's address,
    // with bit 160 set when the embedded ISM is MerkleRoot. The XOR of the two is then zero
    // exactly for the embedded MessageId ISM (and for a Mailbox without a set, which rejects)
    // and 1 << 160 exactly for the embedded MerkleRoot ISM (the ISM address has no bits
    // above 159), so the MessageId path needs no separate branch on the module type.
    uint256 private immutable ismTag;
    uint256 private constant MERKLE_ROOT_TAG = 1 << 160;
    uint8 private constant MERKLE_ROOT =
        uint8(IInterchainSecurityModule.Types.MERKLE_ROOT_MULTISIG);
    uint8 private constant MESSAGE_ID =
        uint8(IInterchainSecurityModule.Types.MESSAGE_ID_MULTISIG);
    bytes32 private immutable ismW0;
    bytes32 private immutable ismW1;
    bytes32 private immutable ismW2;
    bytes32 private immutable ismW3;
    bytes32 private immutable ismW4;
    bytes32 private immutable ismW5;
    bytes32 private immutable ismW6;
    bytes32 private immutable ismW7;
    bytes32 private immutable ismW8;
    bytes32 private immutable ismW9;
    bytes32 private immutable ismW10;
    bytes32 private immutable ismW11;
    bytes32 private immutable ismW12;
    bytes32 private immutable ismW13;
    bytes32 private immutable ismW14;
    bytes32 private immutable ismW15;

    // Slot read and written by every dispatch: default hook, nonce, tree count, flags.
    // Hook used when a dispatch names none (this Mailbox = embedded tree); `defaultHook()`.
    address internal defaultHook;
    /// @notice Number of messages dispatched so far (the next message's nonce).
    uint32 public nonce;
    uint32 private treeCount;
    bool private hasRequiredHook;
    bool private initialized;

    /// @notice Id of the message most recently dispatched.
    bytes32 public latestDispatchedId;
    /// @notice ISM used for recipients that do not name one.
    IInterchainSecurityModule internal defaultIsm;
    address private requiredHookAddress;
    // The delivery record of message `id` (processor | block << 160 | 1 << 255; zero: not
    // delivered) lives at storage slot `id` itself, which saves hashing the slot of a
    // mapping. Ids are keccak256 outputs, so one landing on this contract's fixed slots
    // (fewer than 64) would need a keccak preimage; no mapping is used anywhere else.
    bytes32[32] private branch;

    /// @param domain The domain of this chain.
    /// @param initialOwner The owner allowed to change ISM and hooks.
    /// @param validators The embedded ISM's validators, in list order (empty: no embedded
    /// ISM); at most MAX_EMBEDDED_VALIDATORS, none zero, none twice.
    /// @param threshold The embedded ISM's threshold: within 1..=validators, or 0 when
    /// `validators` is empty.
    /// @param embeddedModuleType The embedded ISM's module type: 5 (MessageId metadata, as
    /// `StaticMessageIdMultisigIsm`) or 4 (MerkleRoot metadata, as
    /// `StaticMerkleRootMultisigIsm`); 0 when `validators` is empty.
    constructor(
        uint32 domain,
        address initialOwner,
        address[] memory validators,
        uint8 threshold,
        uint8 embeddedModuleType
    ) Owned(initialOwner) {
        localDomain = domain;
        deployedBlock = block.number;
        deployer = msg.sender;
        uint256 n = validators.length;
        if (n > MAX_EMBEDDED_VALIDATORS || threshold > n || (n != 0 && threshold == 0)) {
            revert InvalidValidatorSet();
        }
        bytes memory packed = new bytes(512);
        for (uint256 i = 0; i < n; ++i) {
            address v = validators[i];
            if (v == address(0)) revert InvalidValidatorSet();
            for (uint256 j = 0; j < i; ++j) {
                if (validators[j] == v) revert InvalidValidatorSet();
            }
            assembly ("memory-safe") {
                mstore(add(add(packed, 0x20), mul(i, 20)), shl(96, v))
            }
        }
        if (
            n == 0
                ? embeddedModuleType != 0
                : embeddedModuleType != MERKLE_ROOT && embeddedModuleType != MESSAGE_ID
        ) revert InvalidEmbeddedModuleType(embeddedModuleType);
        ismSize = uint256(threshold) | (n << 8);
        ismType = embeddedModuleType;
        ismTag = uint256(uint160(address(this)))
            | (embeddedModuleType == MERKLE_ROOT ? MERKLE_ROOT_TAG : 0);
        ismW0 = _word(packed, 0);
        ismW1 = _word(packed, 1);
        ismW2 = _word(packed, 2);
        ismW3 = _word(packed, 3);
        ismW4 = _word(packed, 4);
        ismW5 = _word(packed, 5);
        ismW6 = _word(packed, 6);
        ismW7 = _word(packed, 7);
        ismW8 = _word(packed, 8);
        ismW9 = _word(packed, 9);
        ismW10 = _word(packed, 10);
        ismW11 = _word(packed, 11);
        ismW12 = _word(packed, 12);
        ismW13 = _word(packed, 13);
        ismW14 = _word(packed, 14);
        ismW15 = _word(packed, 15);
    }

    function _word(bytes memory packed, uint256 i) private pure returns (bytes32 w) {
        assembly ("memory-safe") {
            w := mload(add(add(packed, 0x20), shl(5, i)))
        }
    }

    /// @notice One-time setup by the deployer, in the v3 `initialize` shape.
    /// @param newOwner Owner after setup.
    /// @param ism Default ISM.
    /// @param hook Default hook (this Mailbox for the embedded tree).
    /// @param required Required hook (zero: none).
    function initialize(address newOwner, address ism, address hook, address required) external {
        if (msg.sender != deployer || initialized) revert AlreadyInitialized();
        initialized = true;
        _setDefaultIsm(ism);
        _setDefaultHook(hook);
        _setRequiredHook(required);
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // ---------------------------------------------------------------- owner setters

    /// @notice Sets the default ISM (must have code).
    function setDefaultIsm(address module) external onlyOwner {
        _setDefaultIsm(module);
    }

    /// @notice Sets the default hook (must have code; this Mailbox selects the embedded tree).
    function setDefaultHook(address hook) external onlyOwner {
        _setDefaultHook(hook);
    }

    function _setDefaultIsm(address module) private {
        if (module == address(this)) {
            if (ismSize == 0) revert NotAContract(module);
        } else if (module.code.length == 0) {
            revert NotAContract(module);
        }
        defaultIsm = IInterchainSecurityModule(module);
        emit DefaultIsmSet(module);
    }

    function _setDefaultHook(address hook) private {
        if (hook.code.length == 0 && hook != address(this)) revert NotAContract(hook);
        defaultHook = hook;
        emit DefaultHookSet(hook);
    }

    function _setRequiredHook(address hook) private {
        if (hook != address(0) && hook.code.length == 0) revert NotAContract(hook);
        requiredHookAddress = hook;
        hasRequiredHook = hook != address(0);
        emit RequiredHookSet(hook);
    }

    /// @notice The hook run on every dispatch before the chosen hook (zero: none).
    function requiredHook() external view returns (address) {
        return requiredHookAddress;
    }

    // ---------------------------------------------------------------- dispatch

    /// @notice Sends `body` to `recipient` on `destination` through the default hook.
    function dispatch(uint32 destination, bytes32 recipient, bytes calldata body)
        external
        payable
        returns (bytes32)
    {
        return _dispatch(destination, recipient, body, msg.data[0:0], address(0));
    }

    /// @notice As `dispatch`, passing `hookMetadata` to the hooks.
    function dispatch(
        uint32 destination,
        bytes32 recipient,
        bytes calldata body,
        bytes calldata hookMetadata
    ) external payable returns (bytes32) {
        return _dispatch(destination, recipient, body, hookMetadata, address(0));
    }

    /// @notice As `dispatch`, through `hook` (zero: the default hook).
    function dispatch(
        uint32 destination,
        bytes32 recipient,
        bytes calldata body,
        bytes calldata hookMetadata,
        address hook
    ) external payable returns (bytes32) {
        return _dispatch(destination, recipient, body, hookMetadata, hook);
    }

    /// @notice Native value `dispatch(destination, recipient, body)` needs now.
    function quoteDispatch(uint32 destination, bytes32 recipient, bytes calldata body)
        external
        view
        returns (uint256)
    {
        return _quote(destination, recipient, body, msg.data[0:0], address(0));
    }

    /// @notice Native value the metadata overload of `dispatch` needs now.
    function quoteDispatch(
        uint32 destination,
        bytes32 recipient,
        bytes calldata body,
        bytes calldata hookMetadata
    ) external view returns (uint256) {
        return _quote(destination, recipient, body, hookMetadata, address(0));
    }

    /// @notice Native value the custom-hook overload of `dispatch` needs now.
    function quoteDispatch(
        uint32 destination,
        bytes32 recipient,
        bytes calldata body,
        bytes calldata hookMetadata,
        address hook
    ) external view returns (uint256) {
        return _quote(destination, recipient, body, hookMetadata, hook);
    }

    function _buildMessage(uint32 messageNonce, uint32 destination, bytes32 recipient, bytes calldata body)
        private
        view
        returns (bytes memory)
    {
        return abi.encodePacked(
            VERSION, messageNonce, localDomain, msg.sender.addressToBytes32(), destination, recipient, body
        );
    }

    function _dispatch(
        uint32 destination,
        bytes32 recipient,
        bytes calldata body,
        bytes calldata metadata,
        address hook
    ) private returns (bytes32 id) {
        uint32 messageNonce = nonce;
        bytes memory message = _buildMessage(messageNonce, destination, recipient, body);
        id = keccak256(message);
        latestDispatchedId = id;
        nonce = messageNonce + 1;
        emit Dispatch(msg.sender, destination, recipient, message);
        emit DispatchId(id);

        uint256 requiredValue = 0;
        if (hasRequiredHook) {
            IPostDispatchHook required = IPostDispatchHook(requiredHookAddress);
            requiredValue = required.quoteDispatch(metadata, message);
            if (msg.value < requiredValue) requiredValue = msg.value;
            required.postDispatch{value: requiredValue}(metadata, message);
        }
        if (hook == address(0)) hook = defaultHook;
        uint256 rest = msg.value - requiredValue;
        if (hook == address(this)) {
            if (rest != 0) revert TreeHookTakesNoValue(rest);
            StandardHookMetadata.requireSupported(metadata);
            _insert(id);
        } else {
            IPostDispatchHook(hook).postDispatch{value: rest}(metadata, message);
        }
    }

    function _quote(
        uint32 destination,
        bytes32 recipient,
        bytes calldata body,
        bytes calldata metadata,
        address hook
    ) private view returns (uint256 total) {
        bytes memory message = _buildMessage(nonce, destination, recipient, body);
        if (hasRequiredHook) {
            total = IPostDispatchHook(requiredHookAddress).quoteDispatch(metadata, message);
        }
        if (hook == address(0)) hook = defaultHook;
        if (hook != address(this)) total += IPostDispatchHook(hook).quoteDispatch(metadata, message);
    }

    // ---------------------------------------------------------------- delivery

    /// @notice `process(bytes metadata, bytes message)` (IMailboxProcess): delivers `message`
    /// if the recipient's ISM accepts `metadata`.
    /// @dev This function's name was chosen (searched for) so that its selector is that of
    /// `process(bytes,bytes)`, 0x7c39d130: solc then dispatches `process` calls here, at the
    /// same place in its selector comparisons, and `build.js` lists it in the ABI as
    /// `IMailboxProcess.process` (checking that the selectors agree). Taking no arguments, it
    /// skips solc's ABI decoder; the two `bytes` arguments are decoded below instead, and
    /// every encoding solc's decoder would reject is rejected too, with the same empty
    /// revert. Every single delivery runs this, so it is written out in place: the checks of
    /// `_checkMessage`, `recipientIsm`, `_markDelivered` (in that order, with the same
    /// reverts, worked out by `_rejectMessage` off the hot path), the ISM (in place when it
    /// is this Mailbox), then `handle`.
    function process_IyJOut() external payable {
        bytes calldata metadata;
        bytes calldata message;
        assembly ("memory-safe") {
            // The head holds two offsets (from byte 4), each to a length word and the bytes.
            // solc's decoder accepts exactly when calldata holds the 64-byte head and each
            // offset and length is below 2^64 with offset + 4 + 32 + length <= calldatasize.
            // Calldata is far below 2^32 bytes (it would cost more gas than a block holds),
            // so requiring offsets and lengths below 2^32 (no sum can then overflow) with the
            // same end bounds accepts and rejects exactly the same encodings.
            let metadataOffset := calldataload(4)
            let messageOffset := calldataload(0x24)
            let metadataLength := calldataload(add(metadataOffset, 4))
            let messageLength := calldataload(add(messageOffset, 4))
            metadata.offset := add(metadataOffset, 0x24)
            metadata.length := metadataLength
            message.offset := add(messageOffset, 0x24)
            message.length := messageLength
            if or(
                or(lt(calldatasize(), 0x44), shr(32, or(or(metadataOffset, messageOffset), or(metadataLength, messageLength)))),
                or(
                    gt(add(metadata.offset, metadataLength), calldatasize()),
                    gt(add(message.offset, messageLength), calldatasize())
                )
            ) { revert(0, 0) }
        }
        uint256 domain = localDomain;
        bytes32 processTopic = Process.selector;
        bytes32 processIdTopic = ProcessId.selector;
        uint256 originDomain;
        bytes32 sender;
        uint256 recipient;
        bytes32 id;
        bool bad;
        uint256 scratch;
        assembly ("memory-safe") {
            scratch := mload(0x40)
            let o := message.offset
            let head := calldataload(o)
            originDomain := shr(224, shl(40, head))
            sender := calldataload(add(o, 9))
            recipient := calldataload(add(o, 45))
            bad := or(
                or(lt(message.length, 77), iszero(eq(byte(0, head), 3))),
                or(iszero(eq(shr(224, calldataload(add(o, 41))), domain)), shr(160, recipient))
            )
            calldatacopy(scratch, o, message.length)
            id := keccak256(scratch, message.length)
        }
        if (bad) _rejectMessage(message);
        uint256 ism;
        bool seen;
        bool hasCode;
        assembly ("memory-safe") {
            // recipientIsm(recipient)
            mstore(0x00, 0xde523cf3)
            let ok := staticcall(gas(), recipient, 0x1c, 0x04, 0x00, 0x20)
            let returned := gt(returndatasize(), 0x1f)
            ism := mul(mload(0x00), and(ok, returned))
            if or(iszero(ism), shr(160, ism)) {
                // Nothing shares the default ISM's slot (the next variable, an address, does
                // not fit beside it), so the word is the address, unmasked.
                ism := sload(defaultIsm.slot)
            }
            // Outside the precompile range, an account that reverted or returned a word has
            // code (an account without code returns nothing, successfully), so `handle` can
            // skip its EXTCODESIZE check.
            hasCode := and(or(iszero(ok), returned), gt(recipient, 0xffff))
            // _markDelivered(id, originDomain, sender, recipient)
            seen := sload(id)
            sstore(id, or(or(caller(), shl(160, number())), shl(255, 1)))
            log4(0, 0, processTopic, originDomain, sender, recipient)
            log2(0, 0, processIdTopic, id)
        }
        if (seen) _revertAlreadyDelivered();
        uint256 embedded = ism ^ ismTag;
        if (embedded == 0) {
            // `_embeddedValidators`, written out for the usual sets (at most 6 validators:
            // the first four words).
            uint256 size = ismSize;
            uint256 list;
            if (size < 7 << 8) {
                bytes32 w0 = ismW0;
                bytes32 w1 = ismW1;
                bytes32 w2 = ismW2;
                bytes32 w3 = ismW3;
                assembly ("memory-safe") {
                    // The free memory pointer is still `scratch` (nothing was allocated since).
                    list := scratch
                    mstore(list, w0)
                    mstore(add(list, 0x20), w1)
                    mstore(add(list, 0x40), w2)
                    mstore(add(list, 0x60), w3)
                    mstore(0x40, add(list, 0x80))
                }
            } else {
                (list,,) = _embeddedValidators();
            }
            MultisigLib.verifyMessageId(metadata, originDomain, id, list, size >> 8, size & 0xff);
        } else if (embedded == MERKLE_ROOT_TAG) {
            (uint256 ptr, uint256 n, uint256 t) = _embeddedValidators();
            MultisigLib.verifyMerkleRoot(metadata, originDomain, id, ptr, n, t);
        } else {
            _verifyForwarding(address(uint160(ism)), metadata);
        }
        bytes4 notAContract = RecipientNotAContract.selector;
        assembly ("memory-safe") {
            if iszero(hasCode) {
                if iszero(extcodesize(recipient)) {
                    // revert RecipientNotAContract(recipient)
                    mstore(0x00, notAContract)
                    mstore(0x04, recipient)
                    revert(0x00, 0x24)
                }
            }
            // recipient.handle{value: msg.value}(originDomain, sender, message[77:]), built
            // where the message was hashed (and the embedded ISM's validators were then
            // allocated), which neither is needed any more: no further memory expansion.
            let p := scratch
            let bodyLength := sub(message.length, 77)
            mstore(p, 0x56d5d475)
            mstore(add(p, 0x20), originDomain)
            mstore(add(p, 0x40), sender)
            mstore(add(p, 0x60), 0x60)
            mstore(add(p, 0x80), bodyLength)
            calldatacopy(add(p, 0xa0), add(message.offset, 77), bodyLength)
            mstore(add(add(p, 0xa0), bodyLength), 0)
            if iszero(
                call(gas(), recipient, callvalue(), add(p, 0x1c), add(0x84, and(add(bodyLength, 31), not(31))), 0, 0)
            ) {
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
        }
    }

    /// @dev The revert of a delivery whose message id already has a record.
    function _revertAlreadyDelivered() private pure {
        revert("Mailbox: already delivered");
    }

    /// @dev Reverts with the reason `process` rejects `message` for.
    function _rejectMessage(bytes calldata message) private view {
        _checkMessage(message);
        revert("Mailbox: bad message");
    }

    /// @dev Calls `ism.verify(metadata, message)`. `process(bytes,bytes)` and
    /// `verify(bytes,bytes)` share their argument encoding, so the arguments are forwarded
    /// as they arrived, behind the other selector. An ISM revert is passed on as is.
    function _verifyForwarding(address ism, bytes calldata) private {
        bool accepted;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, shl(224, 0xf7e83aee))
            calldatacopy(add(p, 4), 4, sub(calldatasize(), 4))
            if iszero(call(gas(), ism, 0, p, calldatasize(), 0x00, 0x20)) {
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
            accepted := and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))
        }
        require(accepted, "Mailbox: ISM verification failed");
    }

    /// @notice Delivers several messages from one origin under one batch proof.
    /// @dev Every message must name the same origin and use, through `recipientIsm`, the same
    /// ISM as the first; that ISM must implement `verifyBatch`, or be this Mailbox with an
    /// embedded MerkleRoot ISM (verified in place). Each message goes through the
    /// same checks and the same delivery record as `process`; any failure (including a
    /// message already delivered, or a recipient that reverts) reverts the whole batch.
    /// @param metadata The batch metadata for the ISM.
    /// @param messages The messages, in the order the metadata's multiproof lists them.
    function processBatch(bytes calldata metadata, bytes[] calldata messages) external {
        uint256 n = messages.length;
        if (n == 0) revert EmptyBatch();
        bytes32[] memory ids = new bytes32[](n);
        (uint32 origin,, address firstRecipient, bytes32 firstId) = _checkMessage(messages[0]);
        ids[0] = firstId;
        for (uint256 i = 1; i < n; ++i) {
            (uint32 o,,, bytes32 id) = _checkMessage(messages[i]);
            if (o != origin) revert BatchOriginMismatch(i);
            ids[i] = id;
        }
        IInterchainSecurityModule ism = recipientIsm(firstRecipient);
        if (address(ism) == address(this)) {
            _verifyBatchEmbedded(metadata, origin, ids);
        } else {
            require(
                IBatchInterchainSecurityModule(address(ism)).verifyBatch(metadata, origin, ids),
                "Mailbox: ISM verification failed"
            );
        }
        address lastRecipient = firstRecipient;
        for (uint256 i = 0; i < n; ++i) {
            bytes calldata message = messages[i];
            address recipient = message.recipient().bytes32ToAddress();
            if (recipient != lastRecipient) {
                address other = address(recipientIsm(recipient));
                if (other != address(ism)) revert BatchIsmMismatch(i, other);
                lastRecipient = recipient;
            }
            bytes32 sender = message.sender();
            _markDelivered(ids[i], origin, sender, recipient);
            _handle(recipient, origin, sender, message.body(), 0);
        }
    }

    function _checkMessage(bytes calldata message)
        private
        view
        returns (uint32 origin, bytes32 sender, address recipient, bytes32 id)
    {
        message.checkLength();
        uint32 originDomain;
        uint256 version;
        uint256 destination;
        bytes32 recipientWord;
        assembly ("memory-safe") {
            let o := message.offset
            version := byte(0, calldataload(o))
            originDomain := shr(224, calldataload(add(o, 5)))
            sender := calldataload(add(o, 9))
            destination := shr(224, calldataload(add(o, 41)))
            recipientWord := calldataload(add(o, 45))
            let p := mload(0x40)
            calldatacopy(p, o, message.length)
            id := keccak256(p, message.length)
        }
        require(version == VERSION, "Mailbox: bad version");
        require(destination == localDomain, "Mailbox: unexpected destination");
        recipient = recipientWord.bytes32ToAddress();
        origin = originDomain;
    }

    function _markDelivered(bytes32 id, uint32 origin, bytes32 sender, address recipient) private {
        // `id` is a message's keccak256, never one of the fixed slots `_deliveryRecord`
        // guards against: its slot is read directly, as in `process`.
        uint256 record;
        assembly ("memory-safe") {
            record := sload(id)
        }
        if (record != 0) _revertAlreadyDelivered();
        assembly ("memory-safe") {
            sstore(id, or(or(caller(), shl(160, number())), shl(255, 1)))
        }
        emit Process(origin, sender, recipient);
        emit ProcessId(id);
    }

    function _handle(address recipient, uint32 originDomain, bytes32 sender, bytes calldata body, uint256 value)
        private
    {
        if (recipient.code.length == 0) revert RecipientNotAContract(recipient);
        // abi.encodeCall(IMessageRecipient.handle, (originDomain, sender, body)), built in place.
        bytes4 selector = IMessageRecipient.handle.selector;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, selector)
            mstore(add(p, 0x04), originDomain)
            mstore(add(p, 0x24), sender)
            mstore(add(p, 0x44), 0x60)
            mstore(add(p, 0x64), body.length)
            calldatacopy(add(p, 0x84), body.offset, body.length)
            mstore(add(add(p, 0x84), body.length), 0)
            let size := add(0x84, and(add(body.length, 31), not(31)))
            if iszero(call(gas(), recipient, value, p, size, 0, 0)) {
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
        }
    }

    /// @notice The ISM for `recipient`: its `interchainSecurityModule()` if that call succeeds
    /// with a non-zero address, else the default ISM.
    function recipientIsm(address recipient) public view returns (IInterchainSecurityModule) {
        uint256 module;
        assembly ("memory-safe") {
            mstore(0x00, 0xde523cf3)
            let ok := staticcall(gas(), recipient, 0x1c, 0x04, 0x00, 0x20)
            module := mul(mload(0x00), and(ok, iszero(lt(returndatasize(), 0x20))))
        }
        if (module != 0 && module >> 160 == 0) return IInterchainSecurityModule(address(uint160(module)));
        return defaultIsm;
    }

    /// @notice Whether the message with id `id` was delivered, by either path.
    function delivered(bytes32 id) external view returns (bool) {
        return _deliveryRecord(id) != 0;
    }

    /// @dev The delivery record of `id`. Values below 64 are this contract's fixed slots,
    /// never a message id: they have no record.
    function _deliveryRecord(bytes32 id) private view returns (uint256 record) {
        if (uint256(id) < 64) return 0;
        assembly ("memory-safe") {
            record := sload(id)
        }
    }

    // ---------------------------------------------------------------- fallback

    /// @notice Serves `IMailboxFallback` (see there why); reverts on any other call.
    fallback(bytes calldata input) external payable returns (bytes memory) {
        bytes4 selector = msg.sig;
        if (selector == IMailboxFallback.postDispatch.selector) {
            // The decoder validates the whole encoding; both arguments are then taken from
            // calldata at the offsets it checked.
            abi.decode(input[4:], (bytes, bytes));
            _postDispatch(_bytesArg(input[4:], 0), _bytesArg(input[4:], 0x20));
            return "";
        }
        // Every other served function is non-payable.
        if (msg.value != 0) revert();
        if (selector == IMailboxFallback.count.selector) return abi.encode(treeCount);
        if (selector == IMailboxFallback.defaultHook.selector) return abi.encode(defaultHook);
        if (selector == IMailboxFallback.defaultIsm.selector) return abi.encode(defaultIsm);
        if (selector == IMailboxFallback.moduleType.selector) return abi.encode(ismType);
        if (selector == IMailboxFallback.processedAt.selector) {
            bytes32 id = abi.decode(input[4:], (bytes32));
            return abi.encode(uint48(_deliveryRecord(id) >> 160));
        }
        if (selector == IMailboxFallback.processor.selector) {
            bytes32 id = abi.decode(input[4:], (bytes32));
            return abi.encode(address(uint160(_deliveryRecord(id))));
        }
        if (selector == IMailboxFallback.setRequiredHook.selector) {
            if (msg.sender != owner) revert NotOwner(msg.sender);
            _setRequiredHook(abi.decode(input[4:], (address)));
            return "";
        }
        if (selector == IMailboxFallback.validatorsAndThreshold.selector) {
            abi.decode(input[4:], (bytes));
            (uint256 ptr, uint256 n, uint256 t) = _embeddedValidators();
            return abi.encode(MultisigLib.toArray(ptr, n), uint8(t));
        }
        // verifyBatch(bytes,uint32,bytes32[]), compared as a right-aligned word so that the
        // code holds a PUSH4 of the selector, as a dispatcher's does: relayers look for one
        // (with module type 4) to tell that an ISM takes batches.
        uint256 selectorWord;
        assembly ("memory-safe") {
            selectorWord := shr(224, calldataload(0))
        }
        if (selectorWord == 0x346ef4e6) {
            // The decoder validates the whole encoding; the metadata is then taken from
            // calldata (where `MultisigLib` reads it) at the offset it checked.
            (, uint32 origin, bytes32[] memory ids) =
                abi.decode(input[4:], (bytes, uint32, bytes32[]));
            _verifyBatchEmbedded(_bytesArg(input[4:], 0), origin, ids);
            return abi.encode(true);
        }
        revert();
    }

    /// @dev The `bytes` argument whose head word is at byte `head` of the ABI-encoded `args`
    /// (an encoding `abi.decode` has already validated), taken from calldata.
    function _bytesArg(bytes calldata args, uint256 head) private pure returns (bytes calldata arg) {
        assembly ("memory-safe") {
            let p := add(args.offset, calldataload(add(args.offset, head)))
            arg.offset := add(p, 0x20)
            arg.length := calldataload(p)
        }
    }

    // ---------------------------------------------------------------- embedded ISM

    /// @notice The embedded ISM's check: as type 5, `StaticMessageIdMultisigIsm.verify`
    /// (SPEC 5.2: merkleTreeHook (32) || root (32) || index (4) || signatures (65 each)); as
    /// type 4, `StaticMerkleRootMultisigIsm.verify` (SPEC 5.3: merkleTreeHook (32) ||
    /// messageIndex (4) || signedMessageId (32) || proof (32 x 32) || signedIndex (4) ||
    /// signatures). Without a set (type 0) it rejects everything (`NoValidatorSet`, after the
    /// MessageId layout's length check).
    function verify(bytes calldata metadata, bytes calldata message) external view returns (bool) {
        bool merkleRoot = ismType == MERKLE_ROOT;
        uint256 minimum = merkleRoot ? MultisigLib.MERKLE_ROOT_SIGNATURES_OFFSET : 68;
        if (metadata.length < minimum) {
            revert MultisigLib.MetadataTooShort(metadata.length, minimum);
        }
        message.checkLength();
        (uint256 ptr, uint256 n, uint256 t) = _embeddedValidators();
        if (merkleRoot) {
            MultisigLib.verifyMerkleRoot(metadata, message.origin(), message.id(), ptr, n, t);
        } else {
            MultisigLib.verifyMessageId(metadata, message.origin(), message.id(), ptr, n, t);
        }
        return true;
    }

    /// @dev The embedded MerkleRoot ISM's batch check (`verifyBatch`); refuses when the
    /// embedded ISM is of another type.
    function _verifyBatchEmbedded(bytes calldata metadata, uint32 origin, bytes32[] memory ids)
        private
        view
    {
        if (ismType != MERKLE_ROOT) revert EmbeddedIsmNotMerkleRoot();
        (uint256 ptr, uint256 n, uint256 t) = _embeddedValidators();
        MultisigLib.verifyMerkleRootBatchInMemory(metadata, origin, ids, ptr, n, t);
    }

    /// @dev Writes the embedded validators into fresh memory (only the words they fill).
    function _embeddedValidators() private view returns (uint256 ptr, uint256 n, uint256 t) {
        uint256 size = ismSize;
        t = size & 0xff;
        n = size >> 8;
        assembly ("memory-safe") {
            ptr := mload(0x40)
        }
        uint256 used = 128;
        _put(ptr, 0, ismW0);
        _put(ptr, 1, ismW1);
        _put(ptr, 2, ismW2);
        _put(ptr, 3, ismW3);
        if (n > 6) {
            used = 256;
            _put(ptr, 4, ismW4);
            _put(ptr, 5, ismW5);
            _put(ptr, 6, ismW6);
            _put(ptr, 7, ismW7);
            if (n > 12) {
                used = 512;
                _put(ptr, 8, ismW8);
                _put(ptr, 9, ismW9);
                _put(ptr, 10, ismW10);
                _put(ptr, 11, ismW11);
                _put(ptr, 12, ismW12);
                _put(ptr, 13, ismW13);
                _put(ptr, 14, ismW14);
                _put(ptr, 15, ismW15);
            }
        }
        assembly ("memory-safe") {
            mstore(0x40, add(ptr, used))
        }
    }

    function _put(uint256 ptr, uint256 i, bytes32 w) private pure {
        assembly ("memory-safe") {
            mstore(add(ptr, shl(5, i)), w)
        }
    }

    // ---------------------------------------------------------------- embedded tree hook

    function _insert(bytes32 id) private {
        uint256 index = treeCount;
        require(index < MerkleLib.MAX_LEAVES, "merkle tree full");
        treeCount = uint32(index + 1);
        MerkleLib.insert(branch, index + 1, id);
        emit InsertedIntoTree(id, uint32(index));
    }

    // The embedded tree answers IPostDispatchHook: hookType, supportsMetadata, quoteDispatch
    // here, postDispatch from the fallback (IMailboxFallback).

    /// @notice The hook type of the embedded tree: MERKLE_TREE.
    function hookType() external pure returns (uint8) {
        return uint8(IPostDispatchHook.Types.MERKLE_TREE);
    }

    /// @notice Whether the embedded tree accepts this metadata (empty or StandardHookMetadata
    /// variant 1).
    function supportsMetadata(bytes calldata metadata) external pure returns (bool) {
        return StandardHookMetadata.isSupported(metadata);
    }

    /// @dev `IMailboxFallback.postDispatch`: inserts the in-flight message into the embedded
    /// tree.
    function _postDispatch(bytes calldata metadata, bytes calldata message) private {
        StandardHookMetadata.requireSupported(metadata);
        if (msg.value != 0) revert TreeHookTakesNoValue(msg.value);
        bytes32 id = message.id();
        require(latestDispatchedId == id, "message not dispatching");
        _insert(id);
    }

    /// @notice The embedded tree takes no payment.
    function quoteDispatch(bytes calldata metadata, bytes calldata) external pure returns (uint256) {
        StandardHookMetadata.requireSupported(metadata);
        return 0;
    }

    /// @notice Root of the embedded tree.
    function root() public view returns (bytes32) {
        return MerkleLib.root(branch, treeCount);
    }

    /// @notice Branch and count of the embedded tree.
    function tree() external view returns (bytes32[32] memory, uint256) {
        return (branch, treeCount);
    }

    /// @notice (root, count - 1) of the embedded tree; reverts when it is empty.
    function latestCheckpoint() external view returns (bytes32, uint32) {
        return (root(), treeCount - 1);
    }
}
