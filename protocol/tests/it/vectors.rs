//! Every expected value of the test vectors, reproduced.

use std::str::FromStr;

use metalayer_protocol::{
    Address, B256, Bytes, Checkpoint, CheckpointWithMessageId, Message,
    checkpoint::domain_hash,
    eip191_hash_bytes,
    merkle::{MerkleProver, MerkleTree, branch_root},
    metadata::{MessageIdMultisigMetadata, order_signatures},
    signature::{Signature, recover_address},
    signed::SignedCheckpoint,
};
use serde::Deserialize;
use serde_json::Value;

fn vector(name: &str) -> String {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn b256(v: &Value) -> B256 {
    B256::from_str(v.as_str().expect("hex string")).expect("32-byte hex")
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    alloy_primitives::hex::decode(v.as_str().expect("hex string")).expect("hex")
}

/// A message from the vectors' JSON fields, with its body given separately
/// (the files spell bodies differently).
fn message_from(v: &Value, body: Vec<u8>) -> Message {
    let u32_of = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok()).expect("u32 field");
    Message {
        version: u8::try_from(v["version"].as_u64().expect("version")).expect("u8 version"),
        nonce: u32_of("nonce"),
        origin: u32_of("origin"),
        sender: b256(&v["sender"]),
        destination: u32_of("destination"),
        recipient: b256(&v["recipient"]),
        body: Bytes::from(body),
    }
}

#[test]
fn message_encoding_and_id() {
    let cases: Value = serde_json::from_str(&vector("message.json")).unwrap();
    for case in cases.as_array().unwrap() {
        let body: Vec<u8> =
            case["body"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
        let message = message_from(case, body);
        assert_eq!(message.id(), b256(&case["id"]));
        assert_eq!(Message::decode(&message.encode()).unwrap(), message);
    }
}

#[test]
fn checkpoint_domain_hashes() {
    let cases: Value = serde_json::from_str(&vector("domainHash.json")).unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 3);
    for case in cases.as_array().unwrap() {
        let domain = case["domain"].as_u64().unwrap() as u32;
        assert_eq!(
            domain_hash(domain, b256(&case["mailbox"])),
            b256(&case["expectedDomainHash"]),
            "domain {domain}"
        );
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MerkleCase {
    test_name: String,
    expected_root: B256,
    leaves: Vec<String>,
    proofs: Vec<ProofCase>,
}

#[derive(Deserialize)]
struct ProofCase {
    leaf: B256,
    index: u32,
    path: Vec<B256>,
}

#[test]
fn merkle_roots_and_every_proof() {
    let cases: Vec<MerkleCase> = serde_json::from_str(&vector("merkle.json")).unwrap();
    assert_eq!(cases.len(), 5);
    let mut proofs_checked = 0;
    for case in &cases {
        let mut tree = MerkleTree::new();
        let mut prover = MerkleProver::new();
        for leaf in &case.leaves {
            let leaf = eip191_hash_bytes(leaf.as_bytes());
            tree.insert(leaf).unwrap();
            prover.insert(leaf).unwrap();
        }
        assert_eq!(tree.root(), case.expected_root, "{}", case.test_name);
        assert_eq!(prover.root(), case.expected_root, "{}", case.test_name);
        assert_eq!(case.proofs.len(), case.leaves.len());
        for expected in &case.proofs {
            let path: [B256; 32] = expected.path.clone().try_into().unwrap();
            assert_eq!(branch_root(expected.leaf, &path, expected.index), case.expected_root);
            let ours = prover.prove(expected.index).unwrap();
            assert_eq!(ours.leaf, expected.leaf, "{} leaf {}", case.test_name, expected.index);
            assert_eq!(ours.path, path, "{} proof {}", case.test_name, expected.index);
            proofs_checked += 1;
        }
    }
    assert_eq!(proofs_checked, 3 + 1 + 42 + 5);
}

#[test]
fn two_leaf_proof() {
    let v: Value = serde_json::from_str(&vector("proof.json")).unwrap();
    let proof = &v["proof"];
    let path: Vec<B256> = proof["path"].as_array().unwrap().iter().map(b256).collect();
    let path: [B256; 32] = path.try_into().unwrap();
    let index = proof["index"].as_u64().unwrap() as u32;
    let leaf = b256(&proof["leaf"]);
    let root = b256(&v["root"]);
    assert_eq!(branch_root(leaf, &path, index), root);
    // Rebuilt by insertion: leaf 0 is the level-0 sibling.
    let mut prover = MerkleProver::new();
    prover.insert(path[0]).unwrap();
    prover.insert(leaf).unwrap();
    assert_eq!(prover.root(), root);
    assert_eq!(prover.prove(index).unwrap().path, path);
}

struct Multisig {
    v: Value,
    message: Message,
    checkpoint: CheckpointWithMessageId,
    validators: Vec<Address>,
    signatures: Vec<Signature>,
}

fn multisig() -> Multisig {
    let v: Value = serde_json::from_str(&vector("message_id_multisig.json")).unwrap();
    let m = &v["message"];
    let message = message_from(m, hex_bytes(&m["body"]));
    let c = &v["checkpoint"];
    let checkpoint = CheckpointWithMessageId {
        checkpoint: Checkpoint {
            merkle_tree_hook: b256(&c["merkle_tree_hook"]),
            origin: c["origin"].as_u64().unwrap() as u32,
            root: b256(&c["root"]),
            index: c["index"].as_u64().unwrap() as u32,
        },
        message_id: b256(&c["message_id"]),
    };
    let validators = v["validators_in_ism_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| Address::from_str(a.as_str().unwrap()).unwrap())
        .collect();
    let signatures = v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Signature::from_bytes(&hex_bytes(s)).unwrap())
        .collect();
    Multisig { v, message, checkpoint, validators, signatures }
}

#[test]
fn multisig_digest_and_signers() {
    let f = multisig();
    assert_eq!(f.message.encode(), hex_bytes(&f.v["message_bytes"]));
    assert_eq!(f.message.id(), b256(&f.v["message_id"]));
    assert_eq!(f.checkpoint.message_id, f.message.id());
    let c = &f.checkpoint.checkpoint;
    assert_eq!(domain_hash(c.origin, c.merkle_tree_hook), b256(&f.v["domain_hash"]));
    assert_eq!(f.checkpoint.signing_hash(), b256(&f.v["signing_hash_before_eip191"]));
    assert_eq!(f.checkpoint.digest(), b256(&f.v["eip191_digest"]));
    for (signature, validator) in f.signatures.iter().zip(&f.validators) {
        assert_eq!(recover_address(f.checkpoint.digest(), signature), Ok(*validator));
    }
}

#[test]
fn multisig_metadata_blobs() {
    let f = multisig();
    let c = &f.checkpoint.checkpoint;
    // Collected out of order and with a duplicate: ordering restores the list order.
    let collected: Vec<(Address, Signature)> =
        [2, 0, 1, 0].iter().map(|&i| (f.validators[i], f.signatures[i])).collect();
    for (threshold, key) in [
        (2, "message_id_multisig_metadata_threshold2_validators01"),
        (3, "message_id_multisig_metadata_threshold3"),
    ] {
        let signatures = order_signatures(&f.validators, threshold, collected.clone()).unwrap();
        let metadata = MessageIdMultisigMetadata {
            merkle_tree_hook: c.merkle_tree_hook,
            root: c.root,
            index: c.index,
            signatures,
        };
        let expected = hex_bytes(&f.v[key]);
        assert_eq!(metadata.encode(), expected, "{key}");
        assert_eq!(expected.len(), 68 + 65 * threshold);
        assert_eq!(MessageIdMultisigMetadata::decode(&expected).unwrap(), metadata);
    }
}

#[test]
fn stored_checkpoint_json_round_trips_byte_for_byte() {
    let f = multisig();
    // The object as it stands in the file, re-indented to top level.
    let text = vector("message_id_multisig.json");
    let start = text.find("\"signed_checkpoint_storage_json_validator0\": ").unwrap() + 45;
    let end = text.rfind('}').unwrap();
    let stored = text[start..end].trim_end().replace("\n  ", "\n");
    let signed = SignedCheckpoint::from_json(stored.as_bytes()).unwrap();
    assert_eq!(signed.value, f.checkpoint);
    assert_eq!(signed.signature, f.signatures[0]);
    assert_eq!(signed.recover(), Ok(f.validators[0]));
    assert!(stored.contains("\"r\": \"0x81d398e1"), "the file keeps r in minimal hex");
    assert_eq!(signed.to_json_pretty().unwrap(), stored);
}
