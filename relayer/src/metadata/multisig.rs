//! Multisig metadata: a threshold of validator signatures over one
//! checkpoint, read from each validator's announced storage.
//!
//! Every checkpoint read is checked before use: it must name this origin,
//! its merkle tree hook and the index asked for, and its signature must
//! recover to the validator whose storage served it. One that fails is
//! logged and counted in `metalayer_invalid_checkpoint_signatures_total`,
//! and never used. The rest are grouped by what they sign; a group with
//! `threshold` members gives the signatures, ordered by the validator list.

use std::collections::HashMap;

use alloy::primitives::{Address, B256};
use alloy::sol_types::SolCall;
use metalayer_contracts::bindings::StaticMessageIdMultisigIsm;
use metalayer_protocol::{
    Message, Signature, address_to_bytes32,
    metadata::{MerkleRootMultisigMetadata, MessageIdMultisigMetadata, order_signatures},
    signed::SignedCheckpoint,
};

use super::{IsmContext, MetadataError};

/// Checkpoint indexes tried below the quorum's latest index before giving up
/// for this attempt.
const MAX_WALK: u32 = 8;

async fn validator_set(
    ctx: &IsmContext<'_>,
    ism: Address,
    message: &Message,
) -> Result<(Vec<Address>, usize), MetadataError> {
    if let Some(known) = ctx.cache.ism.validators.get(&ism) {
        return Ok(known);
    }
    let call =
        StaticMessageIdMultisigIsm::validatorsAndThresholdCall::new((message.encode().into(),));
    let answer = ctx
        .destination
        .call(ism, &call, ctx.block)
        .await
        .map_err(|source| MetadataError::Chain { ism, source })?;
    let threshold = usize::from(answer.threshold);
    if threshold == 0 || threshold > answer.validators.len() {
        return Err(MetadataError::Build(format!(
            "ISM {ism} has threshold {threshold} over {} validators",
            answer.validators.len()
        )));
    }
    ctx.cache.ism.validators.put(ism, (answer.validators.clone(), threshold));
    Ok((answer.validators, threshold))
}

/// The checkpoints the validators serve at `index`, each checked; in
/// validator order, with the validator it recovered to.
async fn checkpoints_at(
    ctx: &IsmContext<'_>,
    ism: Address,
    validators: &[Address],
    index: u32,
) -> Result<Vec<(Address, SignedCheckpoint)>, MetadataError> {
    let key = (ctx.origin.chain.domain, ism, index);
    if let Some(known) = ctx.cache.checkpoints.get(&key) {
        return Ok(known);
    }
    let good = read_checkpoints(ctx, validators, index).await?;
    ctx.cache.checkpoints.put(key, good.clone());
    Ok(good)
}

async fn read_checkpoints(
    ctx: &IsmContext<'_>,
    validators: &[Address],
    index: u32,
) -> Result<Vec<(Address, SignedCheckpoint)>, MetadataError> {
    let storages = ctx.origin.sources.storages(validators).await.map_err(MetadataError::NotYet)?;
    let reads = futures::future::join_all(validators.iter().zip(storages).map(
        |(validator, storage)| async move {
            let storage = storage?;
            match storage.read_checkpoint(index).await {
                Ok(found) => found.map(|c| (*validator, c)),
                Err(error) => {
                    tracing::debug!(%validator, index, %error, "checkpoint not readable");
                    None
                }
            }
        },
    ))
    .await;
    let hook = address_to_bytes32(ctx.origin.chain.addresses.merkle_tree_hook);
    let origin = &ctx.origin.chain;
    let mut good = Vec::new();
    for (validator, signed) in reads.into_iter().flatten() {
        let c = &signed.value.checkpoint;
        let problem = if c.origin != origin.domain || c.merkle_tree_hook != hook || c.index != index
        {
            Some(format!(
                "names origin {} hook {} index {}, expected {} {} {index}",
                c.origin, c.merkle_tree_hook, c.index, origin.domain, hook
            ))
        } else {
            match signed.recover() {
                Ok(signer) if signer == validator => None,
                Ok(signer) => Some(format!("signed by {signer}")),
                Err(e) => Some(format!("signature does not recover: {e}")),
            }
        };
        match problem {
            None => good.push((validator, signed)),
            Some(problem) => {
                tracing::warn!(origin = %origin.name, %validator, index, %problem, "validator served a bad checkpoint; ignored");
                ctx.metrics
                    .invalid_signatures
                    .with_label_values(&[origin.name.as_str(), &validator.to_string()])
                    .inc();
            }
        }
    }
    Ok(good)
}

/// Groups checked checkpoints by what they sign and returns the first group,
/// in validator order, that reaches `threshold`: (root, message id,
/// exactly `threshold` ordered signatures).
pub fn checkpoint_quorum(
    validators: &[Address],
    threshold: usize,
    checkpoints: &[(Address, SignedCheckpoint)],
) -> Option<(B256, B256, Vec<Signature>)> {
    let mut groups: HashMap<(B256, B256), Vec<(Address, Signature)>> = HashMap::new();
    for (validator, signed) in checkpoints {
        let key = (signed.value.checkpoint.root, signed.value.message_id);
        groups.entry(key).or_default().push((*validator, signed.signature));
    }
    let mut best: Vec<_> = groups.into_iter().filter(|(_, g)| g.len() >= threshold).collect();
    best.sort_by_key(|(key, _)| *key);
    let ((root, id), group) = best.into_iter().next()?;
    let signatures = order_signatures(validators, threshold, group).ok()?;
    Some((root, id, signatures))
}

/// MessageId multisig: the checkpoint at the message's own leaf.
pub(super) async fn message_id(
    ctx: &IsmContext<'_>,
    ism: Address,
    message: &Message,
) -> Result<Vec<u8>, MetadataError> {
    let (validators, threshold) = validator_set(ctx, ism, message).await?;
    let id = message.id();
    let index = ctx.leaf_index;
    let checkpoints = checkpoints_at(ctx, ism, &validators, index).await?;
    let matching: Vec<_> =
        checkpoints.into_iter().filter(|(_, c)| c.value.message_id == id).collect();
    let (root, _, signatures) =
        checkpoint_quorum(&validators, threshold, &matching).ok_or_else(|| {
            MetadataError::NotYet(format!(
                "{} of {threshold} validators have signed leaf {index}",
                matching.len()
            ))
        })?;
    Ok(MessageIdMultisigMetadata {
        merkle_tree_hook: address_to_bytes32(ctx.origin.chain.addresses.merkle_tree_hook),
        root,
        index,
        signatures,
    }
    .encode())
}

/// MerkleRoot multisig: the newest checkpoint a quorum has signed at or
/// above the message's leaf, and a proof against the tree at that index.
pub(super) async fn merkle_root(
    ctx: &IsmContext<'_>,
    ism: Address,
    message: &Message,
) -> Result<Vec<u8>, MetadataError> {
    let (validators, threshold) = validator_set(ctx, ism, message).await?;
    let leaf = ctx.leaf_index;
    let latest_key = (ctx.origin.chain.domain, ism);
    let mut latest = match ctx.cache.latest.get(&latest_key) {
        Some(known) => known,
        None => {
            let storages =
                ctx.origin.sources.storages(&validators).await.map_err(MetadataError::NotYet)?;
            let latest: Vec<u32> = futures::future::join_all(
                storages
                    .into_iter()
                    .flatten()
                    .map(|storage| async move { storage.latest_index().await.ok().flatten() }),
            )
            .await
            .into_iter()
            .flatten()
            .collect();
            ctx.cache.latest.put(latest_key, latest.clone());
            latest
        }
    };
    latest.sort_unstable_by(|a, b| b.cmp(a));
    let quorum_index = latest.get(threshold - 1).copied().filter(|i| *i >= leaf).ok_or_else(|| {
        MetadataError::NotYet(format!(
            "fewer than {threshold} validators have signed up to leaf {leaf} (latest: {latest:?})"
        ))
    })?;
    let local = ctx
        .origin
        .prover
        .read()
        .map_err(|_| MetadataError::Build("prover lock poisoned".into()))?
        .count();
    if local <= u64::from(leaf) {
        return Err(MetadataError::NotYet(format!(
            "the local tree has {local} leaves, not yet leaf {leaf}"
        )));
    }
    let start = quorum_index.min((local - 1) as u32);
    for index in (leaf..=start).rev().take(MAX_WALK as usize) {
        let checkpoints = checkpoints_at(ctx, ism, &validators, index).await?;
        let (root, leaf_at, proof) = {
            let prover = ctx
                .origin
                .prover
                .read()
                .map_err(|_| MetadataError::Build("prover lock poisoned".into()))?;
            let root = prover
                .root_at(u64::from(index) + 1)
                .map_err(|e| MetadataError::Build(e.to_string()))?;
            let proof = prover
                .prove_at(leaf, u64::from(index) + 1)
                .map_err(|e| MetadataError::Build(e.to_string()))?;
            (root, prover.leaf(index), proof)
        };
        let (ours, theirs): (Vec<_>, Vec<_>) = checkpoints.into_iter().partition(|(_, c)| {
            c.value.checkpoint.root == root && Some(c.value.message_id) == leaf_at
        });
        for (validator, _) in &theirs {
            tracing::warn!(origin = %ctx.origin.chain.name, %validator, index, "validator signed a root our tree does not have");
        }
        if let Some((_, signed_id, signatures)) = checkpoint_quorum(&validators, threshold, &ours) {
            return Ok(MerkleRootMultisigMetadata {
                merkle_tree_hook: address_to_bytes32(ctx.origin.chain.addresses.merkle_tree_hook),
                message_index: leaf,
                signed_message_id: signed_id,
                proof: proof.path,
                signed_index: index,
                signatures,
            }
            .encode());
        }
    }
    Err(MetadataError::NotYet(format!(
        "no quorum of {threshold} signatures on any checkpoint from {start} down to leaf {leaf}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalayer_protocol::{Checkpoint, CheckpointWithMessageId, LocalSigner, Signer};

    fn signed(key: u8, root: u8) -> (Address, SignedCheckpoint) {
        let signer = LocalSigner::from_bytes(&B256::repeat_byte(key)).unwrap();
        let value = CheckpointWithMessageId {
            checkpoint: Checkpoint {
                merkle_tree_hook: B256::repeat_byte(0xab),
                origin: 1,
                root: B256::repeat_byte(root),
                index: 3,
            },
            message_id: B256::repeat_byte(7),
        };
        (signer.address(), SignedCheckpoint::sign(value, &signer).unwrap())
    }

    #[test]
    fn quorum_groups_by_root_and_orders_exactly_threshold_by_validator_list() {
        let all: Vec<_> = (1..=5).map(|k| signed(k, 0xcc)).collect();
        let validators: Vec<Address> = all.iter().rev().map(|(a, _)| *a).collect();
        // Two validators signed another root: not enough for it, and not mixed in.
        let mut collected = vec![signed(1, 0xdd), signed(2, 0xdd), all[2].clone(), all[3].clone()];
        assert!(checkpoint_quorum(&validators, 3, &collected).is_none());
        collected.push(all[4].clone());
        let (root, id, signatures) = checkpoint_quorum(&validators, 3, &collected).unwrap();
        assert_eq!((root, id), (B256::repeat_byte(0xcc), B256::repeat_byte(7)));
        // Validator list order is 5, 4, 3, 2, 1.
        let expected: Vec<Signature> = [4, 3, 2].iter().map(|i| all[*i].1.signature).collect();
        assert_eq!(signatures, expected);
    }
}
