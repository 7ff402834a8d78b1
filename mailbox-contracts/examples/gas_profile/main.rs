//! Gas profile of one `process`: gas per contract and opcode, frame totals, and with
//! `TRACE=1` every step written to /tmp/trace.txt (depth, pc, opcode, gas left).
//!
//! `cargo run --release -p metalayer-contracts --example gas_profile -- N T [root|embedded|embedded_root]`
//! profiles the third delivery of a stack with N validators and threshold T whose default
//! ISM is the static MessageId one, the static MerkleRoot one (`root`), the embedded
//! MessageId one (`embedded`) or the embedded MerkleRoot one (`embedded_root`).
#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/it/fixture.rs"]
mod fixture;
#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/it/harness.rs"]
mod harness;
/// The profiled chain runs under the gas profiler (see `harness`).
type ChainInspector = prof::Profiler;

mod prof {
    use revm::interpreter::interpreter_types::{InputsTr, Jumps};
    use revm::interpreter::{CallInputs, CallOutcome, Interpreter, interpreter::EthInterpreter};
    use revm::primitives::Address;
    use std::collections::BTreeMap;

    struct Frame {
        addr: Address,
        limit: u64,
        pending: Option<(u8, u64)>,
        child: u64,
    }

    #[derive(Default)]
    pub(crate) struct Profiler {
        frames: Vec<Frame>,
        pub(crate) rows: BTreeMap<(Address, String), (u64, u64)>,
        pub(crate) frame_totals: Vec<(usize, Address, u64)>,
        pub(crate) trace: Vec<(usize, usize, u8, u64)>,
    }

    impl Profiler {
        fn charge(&mut self, addr: Address, op: String, gas: u64) {
            let e = self.rows.entry((addr, op)).or_default();
            e.0 += 1;
            e.1 += gas;
        }
    }

    impl<CTX> revm::Inspector<CTX, EthInterpreter> for Profiler {
        fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _c: &mut CTX) {
            let rem = interp.gas.remaining();
            let op = interp.bytecode.opcode();
            self.trace.push((self.frames.len(), interp.bytecode.pc(), op, rem));
            let f = self.frames.last_mut().unwrap();
            let _ = interp.input.target_address();
            if let Some((pop, before)) = f.pending.take() {
                let cost = before - rem - f.child;
                f.child = 0;
                let addr = f.addr;
                let name = revm::bytecode::opcode::OpCode::new(pop)
                    .map(|o| o.as_str().to_string())
                    .unwrap_or(format!("{pop:02x}"));
                self.charge(addr, name, cost);
            }
            self.frames.last_mut().unwrap().pending = Some((op, rem));
        }
        fn call(&mut self, _c: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
            self.frames.push(Frame {
                addr: inputs.bytecode_address,
                limit: inputs.gas_limit,
                pending: None,
                child: 0,
            });
            None
        }
        fn call_end(&mut self, _c: &mut CTX, _i: &CallInputs, outcome: &mut CallOutcome) {
            let f = self.frames.pop().unwrap();
            let rem = outcome.result.gas.remaining();
            if let Some((pop, before)) = f.pending {
                let name = revm::bytecode::opcode::OpCode::new(pop)
                    .map(|o| o.as_str().to_string())
                    .unwrap_or(format!("{pop:02x}"));
                self.charge(f.addr, name, before - rem - f.child);
            } else {
                self.charge(f.addr, "<precompile>".into(), f.limit - rem);
            }
            let used = f.limit - rem;
            self.frame_totals.push((self.frames.len(), f.addr, used));
            if let Some(p) = self.frames.last_mut() {
                p.child += used;
            }
        }
    }
}

use alloy::primitives::Bytes;
use alloy::sol_types::SolCall;
use fixture::{Origin, Stack, Validators};
use metalayer_contracts::bindings::Mailbox;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(5, |s| s.parse().unwrap());
    let t: u8 = args.get(2).map_or(3, |s| s.parse().unwrap());
    let mode = args.get(3).map_or("", String::as_str);
    // MerkleRoot metadata for `root` and `embedded_root`, MessageId metadata otherwise.
    let root = mode == "root" || mode == "embedded_root";
    let validators = Validators::new(n, t, 3);
    let mut stack = if mode == "embedded_root" {
        Stack::with_embedded(&validators, fixture::MERKLE_ROOT)
    } else {
        Stack::new(&validators)
    };
    match mode {
        "root" => {
            let module = stack.merkle_root_ism;
            stack.set_default_ism(module);
        }
        "embedded" | "embedded_root" => stack.use_embedded_ism(),
        _ => {}
    }
    let mut origin = Origin::new();
    let msgs: Vec<_> = (0..3).map(|_| origin.dispatch(stack.null_recipient, &[0x5a; 32])).collect();
    // deliver first two, profile third
    for (i, message) in msgs.iter().enumerate() {
        let md = if root {
            origin.merkle_root_metadata(&validators, i as u32, 2)
        } else {
            origin.message_id_metadata(&validators, i as u32)
        };
        let call = Mailbox::processCall { metadata: md.into(), message: message.encode().into() };
        let data: Bytes = call.abi_encode().into();
        let nz = data.iter().filter(|b| **b != 0).count();
        let (r, p) = stack.chain.inspect(stack.relayer, stack.mailbox, data.clone());
        let r = r.ok();
        if i < 2 {
            continue;
        }
        println!(
            "tx gas {} calldata {} bytes, {} nonzero => calldata gas {}",
            r.gas_used,
            data.len(),
            nz,
            nz * 16 + (data.len() - nz) * 4
        );
        let mut total = 0;
        let mut rows: Vec<_> = p.rows.iter().collect();
        rows.sort_by_key(|(_, v)| std::cmp::Reverse(v.1));
        for ((a, op), (c, g)) in rows {
            total += g;
            println!("{:>6} {:>4}x {:<14} {}", g, c, op, &a.to_string()[..10]);
        }
        println!("sum of opcode gas {total}");
        for (d, a, u) in &p.frame_totals {
            println!("frame depth {d} {a} used {u}");
        }
        if std::env::var("TRACE").is_ok() {
            let mut f = String::new();
            for (d, pc, op, g) in &p.trace {
                let name = revm::bytecode::opcode::OpCode::new(*op)
                    .map(|o| o.as_str().to_string())
                    .unwrap_or_default();
                f += &format!("{d} {pc} {name} {g}\n");
            }
            std::fs::write("/tmp/trace.txt", f).unwrap();
        }
    }
}
