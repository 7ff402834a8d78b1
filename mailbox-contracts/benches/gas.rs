//! Gas table: the committed bytecode in revm, one transaction per row (whole-transaction
//! gas, the 21k base included), 32-byte bodies, a recipient whose `handle` does nothing.
//!
//! Beside each figure: the floor for one message per transaction with a fresh replay slot
//! (50.4k + 4.3k per signature) and Hyperlane 12.1.0's figure for the same row, measured
//! the same way on anvil (given in issue 3). Run with `cargo bench -p metalayer-contracts`.
//! This is a measurement, not a test: it asserts nothing.

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/harness.rs"]
mod harness;
/// The bench's chain runs without an inspector (a no-op inspector; see `harness`).
type ChainInspector = revm::inspector::NoOpInspector;

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/fixture.rs"]
mod fixture;

use alloy::primitives::{Address, B256, Bytes};
use alloy::sol_types::SolConstructor;
use fixture::{MERKLE_ROOT, NO_MODULE, Origin, Stack, Validators, creation, mailbox_creation};
use harness::Chain;
use metalayer_contracts::bindings::{Mailbox, MerkleTreeHook};
use metalayer_contracts::metadata::BatchMultisigMetadata;

const BODY: [u8; 32] = [0x5a; 32];

struct Row {
    name: String,
    gas: f64,
    floor: Option<f64>,
    hyperlane: Option<f64>,
    goal: Option<f64>,
}

fn floor(t: usize) -> f64 {
    50_400.0 + 4_300.0 * t as f64
}

/// Mean dispatch gas over 100 dispatches after 100 earlier ones, through `hook`
/// (the Mailbox itself for the embedded tree).
fn dispatch_mean(standalone_tree: bool) -> f64 {
    let mut chain = Chain::new();
    let owner = Address::repeat_byte(1);
    let mailbox = chain.deploy(owner, mailbox_creation(owner, vec![], 0, NO_MODULE));
    let hook = if standalone_tree {
        let args = MerkleTreeHook::constructorCall { mailboxAddress: mailbox }.abi_encode();
        chain.deploy(owner, creation(&MerkleTreeHook::BYTECODE, &args))
    } else {
        mailbox
    };
    let ism = chain.deploy(owner, metalayer_contracts::bindings::NullRecipient::BYTECODE.clone());
    let init = Mailbox::initializeCall { newOwner: owner, ism, hook, required: Address::ZERO };
    chain.send_call(owner, mailbox, &init).ok();
    let sender = Address::repeat_byte(0x42);
    let call = Mailbox::dispatch_2Call {
        destination: 4321,
        recipient: B256::repeat_byte(0x24),
        body: Bytes::copy_from_slice(&BODY),
    };
    let mut total = 0u64;
    for i in 0..200 {
        let gas = chain.send_call(sender, mailbox, &call).ok().gas_used;
        if i >= 100 {
            total += gas;
        }
    }
    total as f64 / 100.0
}

/// Which ISM is the Mailbox's default in a bench stack.
#[derive(Clone, Copy, PartialEq)]
enum Ism {
    /// StaticMessageIdMultisigIsm (an external call).
    MessageId,
    /// The Mailbox's embedded MessageId ISM (verified in place).
    Embedded,
    /// StaticMerkleRootMultisigIsm.
    MerkleRoot,
    /// The Mailbox's embedded MerkleRoot ISM (verified in place).
    EmbeddedMerkleRoot,
}

/// A destination stack for `n`-of-`t` with `ism` as its default ISM, and an origin with
/// `messages` messages to the stack's null recipient.
fn setup(
    n: usize,
    t: u8,
    ism: Ism,
    messages: usize,
) -> (Validators, Stack, Origin, Vec<metalayer_protocol::Message>) {
    let validators = Validators::new(n, t, 3);
    let mut stack = if ism == Ism::EmbeddedMerkleRoot {
        Stack::with_embedded(&validators, MERKLE_ROOT)
    } else {
        Stack::new(&validators)
    };
    match ism {
        Ism::MessageId => {}
        Ism::Embedded | Ism::EmbeddedMerkleRoot => stack.use_embedded_ism(),
        Ism::MerkleRoot => {
            let module = stack.merkle_root_ism;
            stack.set_default_ism(module);
        }
    }
    let mut origin = Origin::new();
    let list = (0..messages).map(|_| origin.dispatch(stack.null_recipient, &BODY)).collect();
    (validators, stack, origin, list)
}

/// Mean `process` gas over 20 messages with MessageId metadata through `ism`.
fn process_message_id(n: usize, t: u8, ism: Ism) -> f64 {
    let (validators, mut stack, origin, messages) = setup(n, t, ism, 20);
    let total: u64 = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            stack.process(&origin.message_id_metadata(&validators, i as u32), m).ok().gas_used
        })
        .sum();
    total as f64 / messages.len() as f64
}

/// Mean `process` gas over 20 messages with MerkleRoot metadata against the last checkpoint,
/// through `ism` (the static or the embedded MerkleRoot ISM).
fn process_merkle_root(n: usize, t: u8, ism: Ism) -> f64 {
    let (validators, mut stack, origin, messages) = setup(n, t, ism, 20);
    let last = messages.len() as u32 - 1;
    let total: u64 = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            stack
                .process(&origin.merkle_root_metadata(&validators, i as u32, last), m)
                .ok()
                .gas_used
        })
        .sum();
    total as f64 / messages.len() as f64
}

/// Gas per message of one `processBatch` of the last `k` of 200 messages, 3-of-5, through
/// `ism` (the static or the embedded MerkleRoot ISM).
fn batch_per_message(k: usize, ism: Ism) -> f64 {
    let (validators, mut stack, origin, messages) = setup(5, 3, ism, 200);
    let signed = messages.len() as u32 - 1;
    let indices: Vec<u32> = (messages.len() - k..messages.len()).map(|i| i as u32).collect();
    let checkpoint = origin.checkpoint_at(signed);
    let metadata = BatchMultisigMetadata {
        merkle_tree_hook: origin.hook,
        signed_index: signed,
        signed_message_id: checkpoint.message_id,
        proof: origin.tree.prove_batch(&indices, u64::from(signed) + 1).expect("batch proof"),
        signatures: validators.sign_threshold(&checkpoint),
    };
    let call = Mailbox::processBatchCall {
        metadata: metadata.encode().into(),
        messages: indices.iter().map(|&i| Bytes::from(messages[i as usize].encode())).collect(),
    };
    let gas = stack.chain.send_call(stack.relayer, stack.mailbox, &call).ok().gas_used;
    gas as f64 / k as f64
}

fn rows() -> Vec<Row> {
    let mut rows = vec![
        Row {
            name: "dispatch, embedded tree (mean of 100)".into(),
            gas: dispatch_mean(false),
            floor: None,
            hyperlane: Some(68_131.0),
            goal: Some(51_000.0),
        },
        Row {
            name: "dispatch, MerkleTreeHook (mean of 100)".into(),
            gas: dispatch_mean(true),
            floor: None,
            hyperlane: Some(68_131.0),
            goal: Some(51_000.0),
        },
    ];
    for (ism, label) in [(Ism::MessageId, "static ISM"), (Ism::Embedded, "embedded ISM")] {
        for (n, t, hl) in
            [(1, 1, 74_046.0), (5, 3, 86_056.0), (10, 6, 103_900.0), (18, 13, 144_973.0)]
        {
            let goal = if t == 3 { 69_000.0 } else { 0.8 * hl };
            rows.push(Row {
                name: format!("process MessageId {t}-of-{n}, {label}"),
                gas: process_message_id(n, t as u8, ism),
                floor: Some(floor(t)),
                hyperlane: Some(hl),
                goal: Some(goal),
            });
        }
    }
    let merkle_root = [(Ism::MerkleRoot, "static ISM"), (Ism::EmbeddedMerkleRoot, "embedded ISM")];
    for (ism, label) in merkle_root {
        rows.push(Row {
            name: format!("process MerkleRoot 3-of-5, {label}"),
            gas: process_merkle_root(5, 3, ism),
            floor: Some(floor(3)),
            hyperlane: Some(116_396.0),
            goal: Some(0.8 * 116_396.0),
        });
    }
    for (ism, label) in merkle_root {
        for k in [1, 16, 64] {
            rows.push(Row {
                name: format!("batch 3-of-5, k = {k}, per message, {label}"),
                gas: batch_per_message(k, ism),
                floor: Some(floor(3)),
                hyperlane: Some(86_056.0),
                goal: (k == 64).then_some(12_000.0),
            });
        }
    }
    rows
}

fn ratio(gas: f64, other: Option<f64>) -> String {
    other.map_or_else(|| "-".into(), |o| format!("{:.2}", gas / o))
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = rows();
    println!(
        "{:<46} {:>9} {:>9} {:>10} {:>8} {:>8} {:>9} {:>5}",
        "row", "ours", "floor", "hyperlane", "/floor", "/hyp", "goal", "met"
    );
    for r in &rows {
        let cell = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0}"));
        let met = r.goal.map_or("-", |g| if r.gas <= g { "yes" } else { "NO" });
        println!(
            "{:<46} {:>9.0} {:>9} {:>10} {:>8} {:>8} {:>9} {:>5}",
            r.name,
            r.gas,
            cell(r.floor),
            cell(r.hyperlane),
            ratio(r.gas, r.floor),
            ratio(r.gas, r.hyperlane),
            cell(r.goal),
            met
        );
    }
}
