// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CheckpointLib} from "./CheckpointLib.sol";
import {MerkleLib} from "./MerkleLib.sol";
import {MultiProofLib} from "./MultiProofLib.sol";
import {SignatureLib} from "./SignatureLib.sol";

/// @title Threshold signature check shared by the static multisig ISMs and the Mailbox's
/// embedded ISM
/// @notice Signatures are checked as in v3 (SPEC 5.1): the first `threshold` 65-byte
/// signatures must recover to distinct validators in the order of the validator list (a
/// subsequence); signatures beyond the threshold are ignored. A zero threshold accepts
/// nothing. Rejections name their reason. The whole check of each metadata layout lives
/// here (`verifyMessageId`, `verifyMerkleRoot`, `verifyMerkleRootBatch` and its in-memory
/// twin), so a static ISM and the Mailbox's embedded ISM of the same type run the same code
/// on the same metadata.
library MultisigLib {
    /// @notice Where the signatures start in MerkleRoot metadata (SPEC 5.3).
    uint256 internal constant MERKLE_ROOT_SIGNATURES_OFFSET = 1096;
    /// @notice Length of the fixed header of batch metadata (before the multiproof).
    uint256 internal constant BATCH_HEADER = 72;

    /// @notice The metadata is shorter than its fixed part.
    error MetadataTooShort(uint256 length, uint256 minimum);
    /// @notice Fewer than `threshold` signatures were supplied.
    error TooFewSignatures(uint256 supplied, uint256 threshold);
    /// @notice A signature recovers to an address outside the validator set.
    error SignerNotValidator(address signer);
    /// @notice A validator signed twice.
    error DuplicateSigner(address signer);
    /// @notice Signatures are not in validator-list order.
    error SignersOutOfOrder(address signer);
    /// @notice The checkpoint root is zero or the empty-tree root, which prove no message.
    error EmptyRoot(bytes32 root);
    /// @notice There is no validator set (threshold zero): nothing can be verified.
    error NoValidatorSet();

    /// @dev Reverts unless the first `t` of the 65-byte signatures at calldata offset `sigs`
    /// (`sigsLength` bytes) come from validators of the `n` packed 20-byte addresses at memory
    /// `list`, in list order, each at most once. The loop runs once per signature on every
    /// delivery, so it is assembly and only detects failure; the reason is then worked out
    /// by `_explainRejection`, off the hot path. The ecrecover input is built in the scratch
    /// words 0x00-0x7f; the free memory pointer and the zero word are restored afterwards.
    function verify(bytes32 digest, uint256 sigs, uint256 sigsLength, uint256 list, uint256 n, uint256 t)
        internal
        view
    {
        bool failed;
        assembly ("memory-safe") {
            let fmp := mload(0x40)
            let cursor := list
            let listEnd := add(list, mul(n, 20))
            let sig := sigs
            let sigEnd := add(sig, mul(t, 65))
            failed := or(iszero(t), lt(sigsLength, mul(t, 65)))
            mstore(0x00, digest)
            for {} lt(sig, sigEnd) { sig := add(sig, 65) } {
                let s := calldataload(add(sig, 0x20))
                let v := byte(0, calldataload(add(sig, 0x40)))
                mstore(0x20, v)
                mstore(0x40, calldataload(sig))
                mstore(0x60, s)
                // The signer overwrites v; an invalid signature returns nothing: zero.
                pop(staticcall(gas(), 0x01, 0x00, 0x80, 0x20, 0x20))
                let signer := mul(mload(0x20), eq(returndatasize(), 0x20))
                // s above n/2, or no signer (the precompile also refuses v other than 27
                // or 28: a 32-byte v word of any other value returns nothing).
                failed := or(
                    failed,
                    or(gt(s, 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0), iszero(signer))
                )
                // Advance through the list past this signer. Running off the end leaves the
                // cursor beyond listEnd for good (it only grows), which the check after the
                // loop catches; a match read beyond the end is therefore never accepted.
                let candidate := shr(96, mload(cursor))
                cursor := add(cursor, 20)
                for {} and(iszero(eq(candidate, signer)), iszero(gt(cursor, listEnd))) {} {
                    candidate := shr(96, mload(cursor))
                    cursor := add(cursor, 20)
                }
            }
            failed := or(failed, gt(cursor, listEnd))
            mstore(0x40, fmp)
            mstore(0x60, 0)
        }
        if (failed) _explainRejection(digest, sigs, sigsLength, list, n, t);
    }

    /// @dev The whole MessageId check (SPEC 5.2) in one pass: `metadata` = merkleTreeHook (32)
    /// || root (32) || index (4) || signatures (65 each); the digest is that of the
    /// checkpoint (origin, hook, root, index, id); the root must be neither zero nor the
    /// empty tree's; then `verify`'s signature rule against the `n` validators at memory
    /// `list` with threshold `t`. Builds the digest and the ecrecover input in the scratch
    /// words 0x00-0x7f (restoring the free memory pointer and the zero word); on any failure
    /// the reason is worked out again, off the hot path.
    function verifyMessageId(
        bytes calldata metadata,
        uint256 originDomain,
        bytes32 id,
        uint256 list,
        uint256 n,
        uint256 t
    ) internal view {
        bool failed;
        assembly ("memory-safe") {
            let o := metadata.offset
            let fmp := mload(0x40)
            let checkpointRoot := calldataload(add(o, 32))
            failed := or(
                or(iszero(t), lt(metadata.length, add(68, mul(t, 65)))),
                or(iszero(checkpointRoot), eq(checkpointRoot, 0x27ae5ba08d7291c96c8cbddcc148bf48a6d68c7974b94356f53754ef6171d757))
            )
            // Computed even when `failed` is already set (then on whatever the short or
            // rejected metadata holds, reading zeros past calldata): cheaper than a branch
            // on the accepted path, and the result is thrown away.
            {
                // domainHash = keccak(be32(origin) || hook || "HYPERLANE")
                mstore(0x00, shl(224, originDomain))
                mstore(0x04, calldataload(o))
                mstore(0x24, "HYPERLANE")
                mstore(0x00, keccak256(0x00, 45))
                // signingHash = keccak(domainHash || root || be32(index) || id)
                mstore(0x20, checkpointRoot)
                mstore(0x40, calldataload(add(o, 64)))
                mstore(0x44, id)
                let signingHash := keccak256(0x00, 100)
                // digest = keccak("\x19Ethereum Signed Message:\n32" || signingHash)
                mstore(0x00, "\x19Ethereum Signed Message:\n32")
                mstore(0x1c, signingHash)
                mstore(0x00, keccak256(0x00, 0x3c))
                let cursor := list
                let listEnd := add(list, mul(n, 20))
                let sig := add(o, 68)
                for { let sigEnd := add(sig, mul(t, 65)) } lt(sig, sigEnd) { sig := add(sig, 65) } {
                    // ecrecover input: digest (0x00), v (0x20), r (0x40), s (0x60).
                    calldatacopy(0x40, sig, 0x40)
                    mstore(0x20, byte(0, calldataload(add(sig, 0x40))))
                    // The signer overwrites v. A signature with s above n/2, or one the
                    // precompile refuses (it returns nothing instead of one word, also for
                    // v other than 27 or 28), gets a signer of 2^160 or more, which matches
                    // no validator: the cursor then runs off the list, which the check after
                    // the loop catches.
                    pop(staticcall(gas(), 0x01, 0x00, 0x80, 0x20, 0x20))
                    let signer := or(
                        mload(0x20),
                        shl(160, or(gt(mload(0x60), 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0), xor(returndatasize(), 0x20)))
                    )
                    // As in `verify`: the cursor only grows; past listEnd means failure. The
                    // usual case, the signer being the next validator, skips the scan.
                    let candidate := shr(96, mload(cursor))
                    cursor := add(cursor, 20)
                    if iszero(eq(candidate, signer)) {
                        for {} and(iszero(eq(candidate, signer)), iszero(gt(cursor, listEnd))) {} {
                            candidate := shr(96, mload(cursor))
                            cursor := add(cursor, 20)
                        }
                    }
                }
                failed := or(failed, gt(cursor, listEnd))
                mstore(0x40, fmp)
                mstore(0x60, 0)
            }
        }
        if (failed) _explainMessageId(metadata, originDomain, id, list, n, t);
    }

    /// @dev The whole MerkleRoot check (SPEC 5.3): `metadata` = merkleTreeHook (32) ||
    /// messageIndex (4) || signedMessageId (32) || proof (32 x 32) || signedIndex (4) ||
    /// signatures (65 each). The message's leaf `id` at `messageIndex` (at most `signedIndex`)
    /// and the proof give the root, which must be neither zero nor the empty tree's; the
    /// digest is that of the checkpoint (origin, hook, root, signedIndex, signedMessageId);
    /// then `verify`'s signature rule against the `n` validators at memory `list` with
    /// threshold `t`.
    function verifyMerkleRoot(
        bytes calldata metadata,
        uint256 originDomain,
        bytes32 id,
        uint256 list,
        uint256 n,
        uint256 t
    ) internal view {
        if (metadata.length < MERKLE_ROOT_SIGNATURES_OFFSET) {
            revert MetadataTooShort(metadata.length, MERKLE_ROOT_SIGNATURES_OFFSET);
        }
        uint256 o;
        uint256 messageIndex;
        uint256 signedIndex;
        bytes32[32] calldata proof;
        assembly ("memory-safe") {
            o := metadata.offset
            messageIndex := shr(224, calldataload(add(o, 32)))
            signedIndex := shr(224, calldataload(add(o, 1092)))
            proof := add(o, 68)
        }
        require(messageIndex <= signedIndex, "Invalid merkle index metadata");
        bytes32 root = MerkleLib.branchRoot(id, proof, messageIndex);
        checkRoot(root);
        bytes32 digest = CheckpointLib.digest(
            uint32(originDomain),
            bytes32(metadata[0:32]),
            root,
            uint32(signedIndex),
            bytes32(metadata[36:68])
        );
        verify(
            digest,
            o + MERKLE_ROOT_SIGNATURES_OFFSET,
            metadata.length - MERKLE_ROOT_SIGNATURES_OFFSET,
            list,
            n,
            t
        );
    }

    /// @dev The batch check (`verifyBatch`): `metadata` = merkleTreeHook (32) ||
    /// signedIndex (4) || signedMessageId (32) || proofLength (4) || multiproof ||
    /// signatures (65 each). The multiproof of `ids` (see `MultiProofLib`) against the tree of
    /// `signedIndex + 1` leaves gives the root, which must be neither zero nor the empty
    /// tree's; the digest is that of the checkpoint (origin, hook, root, signedIndex,
    /// signedMessageId); then `verify`'s signature rule against the `n` validators at memory
    /// `list` with threshold `t`.
    function verifyMerkleRootBatch(
        bytes calldata metadata,
        uint256 originDomain,
        bytes32[] calldata ids,
        uint256 list,
        uint256 n,
        uint256 t
    ) internal view {
        (uint256 signedIndex, uint256 proofEnd) = _batchHeader(metadata);
        bytes32 root = MultiProofLib.root(ids, metadata[BATCH_HEADER:proofEnd], signedIndex + 1);
        _verifyBatchRoot(metadata, originDomain, root, signedIndex, proofEnd, list, n, t);
    }

    /// @dev As `verifyMerkleRootBatch`, with the ids in memory (read, not modified).
    function verifyMerkleRootBatchInMemory(
        bytes calldata metadata,
        uint256 originDomain,
        bytes32[] memory ids,
        uint256 list,
        uint256 n,
        uint256 t
    ) internal view {
        (uint256 signedIndex, uint256 proofEnd) = _batchHeader(metadata);
        bytes32 root =
            MultiProofLib.rootInMemory(ids, metadata[BATCH_HEADER:proofEnd], signedIndex + 1);
        _verifyBatchRoot(metadata, originDomain, root, signedIndex, proofEnd, list, n, t);
    }

    /// @dev The signed index and the end of the multiproof of batch metadata, both lengths
    /// checked.
    function _batchHeader(bytes calldata metadata)
        private
        pure
        returns (uint256 signedIndex, uint256 proofEnd)
    {
        if (metadata.length < BATCH_HEADER) revert MetadataTooShort(metadata.length, BATCH_HEADER);
        signedIndex = uint32(bytes4(metadata[32:36]));
        proofEnd = BATCH_HEADER + uint32(bytes4(metadata[68:72]));
        if (metadata.length < proofEnd) revert MetadataTooShort(metadata.length, proofEnd);
    }

    /// @dev The batch check after the multiproof gave `root`.
    function _verifyBatchRoot(
        bytes calldata metadata,
        uint256 originDomain,
        bytes32 root,
        uint256 signedIndex,
        uint256 proofEnd,
        uint256 list,
        uint256 n,
        uint256 t
    ) private view {
        checkRoot(root);
        bytes32 digest = CheckpointLib.digest(
            uint32(originDomain),
            bytes32(metadata[0:32]),
            root,
            uint32(signedIndex),
            bytes32(metadata[36:68])
        );
        uint256 sigs;
        assembly ("memory-safe") {
            sigs := add(metadata.offset, proofEnd)
        }
        verify(digest, sigs, metadata.length - proofEnd, list, n, t);
    }

    function _explainMessageId(
        bytes calldata metadata,
        uint256 originDomain,
        bytes32 id,
        uint256 list,
        uint256 n,
        uint256 t
    ) private view {
        if (metadata.length < 68) revert MetadataTooShort(metadata.length, 68);
        bytes32 checkpointRoot = bytes32(metadata[32:64]);
        checkRoot(checkpointRoot);
        bytes32 digest = CheckpointLib.digest(
            uint32(originDomain), bytes32(metadata[0:32]), checkpointRoot, uint32(bytes4(metadata[64:68])), id
        );
        uint256 sigs;
        assembly ("memory-safe") {
            sigs := add(metadata.offset, 68)
        }
        _explainRejection(digest, sigs, metadata.length - 68, list, n, t);
    }

    /// @dev Re-runs the check in plain Solidity and reverts with the first reason found.
    function _explainRejection(
        bytes32 digest,
        uint256 sigs,
        uint256 sigsLength,
        uint256 list,
        uint256 n,
        uint256 t
    ) private view {
        if (t == 0) revert NoValidatorSet();
        if (sigsLength < t * 65) revert TooFewSignatures(sigsLength / 65, t);
        uint256 j = 0;
        uint256 used = 0;
        for (uint256 i = 0; i < t; ++i) {
            address signer = SignatureLib.recoverAt(digest, sigs + i * 65, i);
            while (j < n && validatorAt(list, j) != signer) ++j;
            if (j == n) _rejectSigner(signer, list, n, used);
            used |= 1 << j;
            ++j;
        }
        // Unreachable: the fast loop and this one check the same conditions.
        revert("MultisigLib: rejected");
    }

    /// @dev Explains why `signer` did not match the rest of the list.
    function _rejectSigner(address signer, uint256 list, uint256 n, uint256 used) private pure {
        for (uint256 k = 0; k < n; ++k) {
            if (validatorAt(list, k) == signer) {
                if (used & (1 << k) != 0) revert DuplicateSigner(signer);
                revert SignersOutOfOrder(signer);
            }
        }
        revert SignerNotValidator(signer);
    }

    /// @dev Validator `i` of the packed list at memory `list`.
    function validatorAt(uint256 list, uint256 i) internal pure returns (address v) {
        assembly ("memory-safe") {
            v := shr(96, mload(add(list, mul(i, 20))))
        }
    }

    /// @dev The packed list at memory `list` as an array.
    function toArray(uint256 list, uint256 n) internal pure returns (address[] memory validators) {
        validators = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            validators[i] = validatorAt(list, i);
        }
    }

    /// @dev A zero root or the empty tree's root can hold no message.
    function checkRoot(bytes32 root) internal pure {
        if (root == bytes32(0) || root == MerkleLib.EMPTY_ROOT) revert EmptyRoot(root);
    }
}
