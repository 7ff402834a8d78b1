//! Protocol hot paths: Merkle inserts, historic proofs, checkpoint signing and
//! signature recovery, with our shipped backend beside raw libsecp256k1 and
//! the pure-Rust k256 backend.
//!
//! `cargo bench -p metalayer-protocol` prints criterion's figures per bench,
//! then a summary measured in the same run, interleaved round by round, with
//! operations per second and the ratio of each backend to libsecp256k1.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput};
use metalayer_protocol::{
    B256, LocalSigner, Signature, Signer, keccak256,
    merkle::{MerkleProver, MerkleTree},
    signature::{k256_backend, recover_address},
};
use secp256k1::{Message, SECP256K1, SecretKey, ecdsa::RecoverableSignature};

const PROVER_LEAVES: u32 = 1 << 16;

fn leaf(i: u32) -> B256 {
    keccak256(i.to_be_bytes())
}

fn prover() -> MerkleProver {
    let mut prover = MerkleProver::new();
    for i in 0..PROVER_LEAVES {
        let _ = prover.insert(leaf(i));
    }
    prover
}

/// Deterministic pseudo-random (index, count) pairs with index < count.
fn historic_queries() -> Vec<(u32, u64)> {
    (0..1024u32)
        .map(|i| {
            let h = keccak256(i.to_le_bytes());
            let count = 1 + u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % PROVER_LEAVES;
            let index = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) % count;
            (index, u64::from(count))
        })
        .collect()
}

struct Fixture {
    ours: LocalSigner,
    k256: k256_backend::SecretKey,
    secp: SecretKey,
    digests: Vec<B256>,
    signatures: Vec<Signature>,
    secp_signatures: Vec<RecoverableSignature>,
}

fn fixture() -> Fixture {
    let key = [0x42u8; 32];
    let ours = LocalSigner::from_bytes(&B256::from(key)).expect("valid key");
    let digests: Vec<B256> = (0..256u32).map(|i| keccak256(i.to_be_bytes())).collect();
    let signatures: Vec<Signature> =
        digests.iter().map(|d| ours.sign_digest(*d).expect("sign")).collect();
    let secp = SecretKey::from_byte_array(key).expect("valid key");
    let secp_signatures = digests
        .iter()
        .map(|d| SECP256K1.sign_ecdsa_recoverable(Message::from_digest(d.0), &secp))
        .collect();
    let k256 = k256_backend::SecretKey::from_bytes(&key).expect("valid key");
    Fixture { ours, k256, secp, digests, signatures, secp_signatures }
}

fn merkle(c: &mut Criterion) {
    let mut group = c.benchmark_group("merkle");
    group.throughput(Throughput::Elements(1));
    group.bench_function("insert (incremental tree)", |b| {
        let mut tree = MerkleTree::new();
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(tree.insert(leaf(i)))
        })
    });
    group.bench_function("insert (prover)", |b| {
        let mut prover = MerkleProver::new();
        let mut i = 0u32;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(prover.insert(leaf(i)))
        })
    });
    let prover = prover();
    let queries = historic_queries();
    group.bench_function("historic proof (65,536 leaves)", |b| {
        let mut q = queries.iter().cycle();
        b.iter(|| {
            let &(index, count) = q.next().expect("cycle");
            black_box(prover.prove_at(index, count))
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("batch proof of 64 leaves", |b| {
        let indices: Vec<u32> = (1000..1064).collect();
        b.iter(|| black_box(prover.prove_batch(&indices, 5000)))
    });
    group.finish();
}

fn ecdsa(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("ecdsa");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign (ours, shipped backend)", |b| {
        let mut d = f.digests.iter().cycle();
        b.iter(|| black_box(f.ours.sign_digest(*d.next().expect("cycle"))))
    });
    group.bench_function("sign (k256)", |b| {
        let mut d = f.digests.iter().cycle();
        b.iter(|| black_box(f.k256.sign(&d.next().expect("cycle").0)))
    });
    group.bench_function("sign (libsecp256k1)", |b| {
        let mut d = f.digests.iter().cycle();
        b.iter(|| {
            black_box(
                SECP256K1.sign_ecdsa_recoverable(
                    Message::from_digest(d.next().expect("cycle").0),
                    &f.secp,
                ),
            )
        })
    });
    group.bench_function("recover address (ours, shipped backend)", |b| {
        let mut i = (0..f.digests.len()).cycle();
        b.iter(|| {
            let i = i.next().expect("cycle");
            black_box(recover_address(f.digests[i], &f.signatures[i]))
        })
    });
    group.bench_function("recover key (k256)", |b| {
        let mut i = (0..f.digests.len()).cycle();
        b.iter(|| {
            let i = i.next().expect("cycle");
            let s = &f.signatures[i];
            black_box(k256_backend::recover(
                &f.digests[i].0,
                &s.r.to_be_bytes(),
                &s.s.to_be_bytes(),
                s.v - 27,
            ))
        })
    });
    group.bench_function("recover key (libsecp256k1)", |b| {
        let mut i = (0..f.digests.len()).cycle();
        b.iter(|| {
            let i = i.next().expect("cycle");
            black_box(
                SECP256K1
                    .recover_ecdsa(Message::from_digest(f.digests[i].0), &f.secp_signatures[i]),
            )
        })
    });
    group.finish();
}

/// Nanoseconds per call of `op` over `n` calls.
fn time_per_op(n: u32, mut op: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        op(i as usize % 256);
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The side-by-side summary: each round times every contender once, in turn,
/// so load on this shared machine hits them alike; medians over rounds.
fn summary() {
    let f = fixture();
    let prover = prover();
    let queries = historic_queries();
    // A tree of 100,000 leaves, and the next eight: the roots a validator
    // signs, one by one as `root()` gives them and eight at a time.
    let base = {
        let branch = std::array::from_fn(|level| leaf(1_000_000 + level as u32));
        MerkleTree::from_parts(branch, 100_000).expect("below the maximum")
    };
    let next: Vec<B256> = (0..8).map(leaf).collect();
    type Op<'a> = Box<dyn FnMut(usize) + 'a>;
    let mut contenders: Vec<(&str, Op<'_>)> = vec![
        (
            "8 roots, one by one",
            Box::new(|_| {
                let mut tree = base.clone();
                for l in &next {
                    black_box(tree.insert(*l).ok());
                    black_box(tree.root());
                }
            }),
        ),
        (
            "8 roots, together",
            Box::new(|_| {
                let mut tree = base.clone();
                black_box(tree.insert_with_roots(&next).ok());
            }),
        ),
        ("merkle insert (incremental tree)", {
            let mut tree = MerkleTree::new();
            Box::new(move |i| {
                black_box(tree.insert(leaf(i as u32)).ok());
            })
        }),
        (
            "historic proof (65,536 leaves)",
            Box::new(|i| {
                let (index, count) = queries[i % queries.len()];
                black_box(prover.prove_at(index, count).ok());
            }),
        ),
        (
            "sign (ours)",
            Box::new(|i| {
                black_box(f.ours.sign_digest(f.digests[i]).ok());
            }),
        ),
        (
            "sign (libsecp256k1)",
            Box::new(|i| {
                black_box(
                    SECP256K1.sign_ecdsa_recoverable(Message::from_digest(f.digests[i].0), &f.secp),
                );
            }),
        ),
        (
            "recover (ours)",
            Box::new(|i| {
                black_box(recover_address(f.digests[i], &f.signatures[i]).ok());
            }),
        ),
        (
            "recover (k256)",
            Box::new(|i| {
                let s = &f.signatures[i];
                black_box(
                    k256_backend::recover(
                        &f.digests[i].0,
                        &s.r.to_be_bytes(),
                        &s.s.to_be_bytes(),
                        s.v - 27,
                    )
                    .ok(),
                );
            }),
        ),
        (
            "recover (libsecp256k1)",
            Box::new(|i| {
                black_box(
                    SECP256K1
                        .recover_ecdsa(Message::from_digest(f.digests[i].0), &f.secp_signatures[i])
                        .ok(),
                );
            }),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let deadline = Instant::now() + Duration::from_secs(6);
    while samples[0].len() < 9 || (Instant::now() < deadline && samples[0].len() < 41) {
        for (k, (_, op)) in contenders.iter_mut().enumerate() {
            samples[k].push(time_per_op(2_000, op));
        }
    }
    let ns: Vec<f64> = samples.into_iter().map(median).collect();
    let by_name = |name: &str| {
        contenders.iter().position(|(n, _)| *n == name).map(|k| ns[k]).unwrap_or(f64::NAN)
    };
    println!("\nsummary (medians of interleaved rounds)");
    println!("{:<36} {:>14} {:>12}", "operation", "ops/s", "vs libsecp");
    for (k, (name, _)) in contenders.iter().enumerate() {
        let peer = if name.starts_with("sign") {
            by_name("sign (libsecp256k1)")
        } else if name.starts_with("recover") {
            by_name("recover (libsecp256k1)")
        } else {
            f64::NAN
        };
        let ratio = if peer.is_nan() { String::from("-") } else { format!("{:.2}x", peer / ns[k]) };
        println!("{name:<36} {:>14.0} {ratio:>12}", 1e9 / ns[k]);
    }
    println!(
        "roots together (eight-lane Keccak {}): {:.2}x one by one",
        if metalayer_protocol::merkle::eight_lane_keccak() { "on" } else { "off: no AVX-512" },
        by_name("8 roots, one by one") / by_name("8 roots, together")
    );
    let goal = by_name("recover (libsecp256k1)") / by_name("recover (ours)");
    println!(
        "recovery goal >= 0.80x libsecp256k1: {goal:.2}x ({})",
        if goal >= 0.8 { "met" } else { "NOT met" }
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(2));
    merkle(&mut c);
    ecdsa(&mut c);
    c.final_summary();
    summary();
}
