//! The derived v3 MessageId vector (kept by the protocol crate under `tests/vectors/`):
//! the ISM accepts its ready-made metadata, computed independently of our code.

use alloy::primitives::{Address, Bytes, hex};
use metalayer_contracts::bindings::{
    StaticMessageIdMultisigIsm as IdIsm, StaticMessageIdMultisigIsmFactory,
};
use serde_json::Value;

use crate::fixture::deploy_ism;
use crate::harness::Chain;

const VECTOR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../protocol/tests/vectors/message_id_multisig.json"
));

fn bytes(v: &Value, key: &str) -> Bytes {
    let text = v[key].as_str().unwrap_or_else(|| panic!("{key} is a string"));
    hex::decode(text).unwrap_or_else(|e| panic!("{key} is hex: {e}")).into()
}

#[test]
fn the_message_id_ism_accepts_the_v3_vector_metadata() {
    let v: Value = serde_json::from_str(VECTOR).expect("vector JSON");
    let validators: Vec<Address> = v["validators_in_ism_order"]
        .as_array()
        .expect("validator list")
        .iter()
        .map(|a| a.as_str().and_then(|s| s.parse().ok()).expect("an address"))
        .collect();
    let message = bytes(&v, "message_bytes");
    let mut chain = Chain::new();
    let owner = Address::repeat_byte(1);
    let factory = chain.deploy(owner, StaticMessageIdMultisigIsmFactory::BYTECODE.clone());
    for (threshold, key) in [
        (2u8, "message_id_multisig_metadata_threshold2_validators01"),
        (3, "message_id_multisig_metadata_threshold3"),
    ] {
        let ism = deploy_ism(&mut chain, owner, factory, &validators, threshold);
        let metadata = bytes(&v, key);
        let call = IdIsm::verifyCall { metadata: metadata.clone(), message: message.clone() };
        assert!(chain.view(ism, &call), "threshold {threshold}");
        // One flipped bit in the message id's preimage and the same metadata fails.
        let mut other = message.to_vec();
        let last = other.len() - 1;
        other[last] ^= 1;
        let call = IdIsm::verifyCall { metadata, message: other.into() };
        let receipt =
            chain.simulate(owner, ism, alloy::sol_types::SolCall::abi_encode(&call).into());
        assert!(receipt.reverted_with::<IdIsm::SignerNotValidator>(), "threshold {threshold}");
    }
}
