//! Keccak-256 of eight 64-byte inputs at once, for the tree's node hashes.
//!
//! A validator signs a checkpoint at every leaf, and each checkpoint's root
//! takes 32 node hashes: an eighth of its CPU went to these roots. The roots of
//! consecutive leaves are independent chains, so [`super::MerkleTree`]
//! computes eight at a time here: with AVX-512 (checked at run time) each of
//! the 25 state words of the permutation is one 512-bit register holding
//! that word of eight states, and the permutation runs on all eight at the
//! cost of about two scalar ones (eight roots 4.3× faster than one by one in
//! `cargo bench -p metalayer-protocol`). Without AVX-512 the eight are
//! hashed one by one. The tests check every lane against the scalar hash
//! (on a CPU without AVX-512 they test the fallback).

use alloy_primitives::{B256, keccak256};

/// Keccak-256 of each of eight 64-byte inputs.
pub(crate) fn keccak64_x8(inputs: &[[u8; 64]; 8]) -> [B256; 8] {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { x86::keccak64_x8(inputs) };
    }
    inputs.map(keccak256)
}

/// Whether the eight-lane permutation can run here (read once).
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

/// Whether [`keccak64_x8`] uses the eight-lane permutation on this CPU.
pub fn eight_lane_keccak() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx512()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_rol_epi64, _mm512_set1_epi64, _mm512_setzero_si512,
        _mm512_storeu_si512, _mm512_ternarylogic_epi64, _mm512_xor_si512,
    };

    use alloy_primitives::B256;

    const ROUND_CONSTANTS: [u64; 24] = [
        0x0000_0000_0000_0001,
        0x0000_0000_0000_8082,
        0x8000_0000_0000_808a,
        0x8000_0000_8000_8000,
        0x0000_0000_0000_808b,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8009,
        0x0000_0000_0000_008a,
        0x0000_0000_0000_0088,
        0x0000_0000_8000_8009,
        0x0000_0000_8000_000a,
        0x0000_0000_8000_808b,
        0x8000_0000_0000_008b,
        0x8000_0000_0000_8089,
        0x8000_0000_0000_8003,
        0x8000_0000_0000_8002,
        0x8000_0000_0000_0080,
        0x0000_0000_0000_800a,
        0x8000_0000_8000_000a,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8080,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8008,
    ];

    /// `a ^ b ^ c`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        _mm512_ternarylogic_epi64::<0x96>(a, b, c)
    }

    /// Keccak-f[1600] on eight states, word `i` of lane `l` in `a[i]`'s
    /// 64-bit element `l`.
    #[target_feature(enable = "avx512f")]
    fn permute(a: &mut [__m512i; 25]) {
        for rc in ROUND_CONSTANTS {
            // θ
            let c: [__m512i; 5] = std::array::from_fn(|x| {
                xor3(xor3(a[x], a[x + 5], a[x + 10]), a[x + 15], a[x + 20])
            });
            for x in 0..5 {
                let d = _mm512_xor_si512(c[(x + 4) % 5], _mm512_rol_epi64::<1>(c[(x + 1) % 5]));
                for y in 0..5 {
                    a[x + 5 * y] = _mm512_xor_si512(a[x + 5 * y], d);
                }
            }
            // ρ and π
            let b0 = a[0];
            let b1 = _mm512_rol_epi64::<44>(a[6]);
            let b2 = _mm512_rol_epi64::<43>(a[12]);
            let b3 = _mm512_rol_epi64::<21>(a[18]);
            let b4 = _mm512_rol_epi64::<14>(a[24]);
            let b5 = _mm512_rol_epi64::<28>(a[3]);
            let b6 = _mm512_rol_epi64::<20>(a[9]);
            let b7 = _mm512_rol_epi64::<3>(a[10]);
            let b8 = _mm512_rol_epi64::<45>(a[16]);
            let b9 = _mm512_rol_epi64::<61>(a[22]);
            let b10 = _mm512_rol_epi64::<1>(a[1]);
            let b11 = _mm512_rol_epi64::<6>(a[7]);
            let b12 = _mm512_rol_epi64::<25>(a[13]);
            let b13 = _mm512_rol_epi64::<8>(a[19]);
            let b14 = _mm512_rol_epi64::<18>(a[20]);
            let b15 = _mm512_rol_epi64::<27>(a[4]);
            let b16 = _mm512_rol_epi64::<36>(a[5]);
            let b17 = _mm512_rol_epi64::<10>(a[11]);
            let b18 = _mm512_rol_epi64::<15>(a[17]);
            let b19 = _mm512_rol_epi64::<56>(a[23]);
            let b20 = _mm512_rol_epi64::<62>(a[2]);
            let b21 = _mm512_rol_epi64::<55>(a[8]);
            let b22 = _mm512_rol_epi64::<39>(a[14]);
            let b23 = _mm512_rol_epi64::<41>(a[15]);
            let b24 = _mm512_rol_epi64::<2>(a[21]);
            // χ
            a[0] = _mm512_ternarylogic_epi64::<0xD2>(b0, b1, b2);
            a[1] = _mm512_ternarylogic_epi64::<0xD2>(b1, b2, b3);
            a[2] = _mm512_ternarylogic_epi64::<0xD2>(b2, b3, b4);
            a[3] = _mm512_ternarylogic_epi64::<0xD2>(b3, b4, b0);
            a[4] = _mm512_ternarylogic_epi64::<0xD2>(b4, b0, b1);
            a[5] = _mm512_ternarylogic_epi64::<0xD2>(b5, b6, b7);
            a[6] = _mm512_ternarylogic_epi64::<0xD2>(b6, b7, b8);
            a[7] = _mm512_ternarylogic_epi64::<0xD2>(b7, b8, b9);
            a[8] = _mm512_ternarylogic_epi64::<0xD2>(b8, b9, b5);
            a[9] = _mm512_ternarylogic_epi64::<0xD2>(b9, b5, b6);
            a[10] = _mm512_ternarylogic_epi64::<0xD2>(b10, b11, b12);
            a[11] = _mm512_ternarylogic_epi64::<0xD2>(b11, b12, b13);
            a[12] = _mm512_ternarylogic_epi64::<0xD2>(b12, b13, b14);
            a[13] = _mm512_ternarylogic_epi64::<0xD2>(b13, b14, b10);
            a[14] = _mm512_ternarylogic_epi64::<0xD2>(b14, b10, b11);
            a[15] = _mm512_ternarylogic_epi64::<0xD2>(b15, b16, b17);
            a[16] = _mm512_ternarylogic_epi64::<0xD2>(b16, b17, b18);
            a[17] = _mm512_ternarylogic_epi64::<0xD2>(b17, b18, b19);
            a[18] = _mm512_ternarylogic_epi64::<0xD2>(b18, b19, b15);
            a[19] = _mm512_ternarylogic_epi64::<0xD2>(b19, b15, b16);
            a[20] = _mm512_ternarylogic_epi64::<0xD2>(b20, b21, b22);
            a[21] = _mm512_ternarylogic_epi64::<0xD2>(b21, b22, b23);
            a[22] = _mm512_ternarylogic_epi64::<0xD2>(b22, b23, b24);
            a[23] = _mm512_ternarylogic_epi64::<0xD2>(b23, b24, b20);
            a[24] = _mm512_ternarylogic_epi64::<0xD2>(b24, b20, b21);
            // ι
            a[0] = _mm512_xor_si512(a[0], _mm512_set1_epi64(rc as i64));
        }
    }

    /// Keccak-256 (rate 136 bytes, padding `0x01 … 0x80`) of eight 64-byte
    /// inputs.
    #[target_feature(enable = "avx512f")]
    pub(super) fn keccak64_x8(inputs: &[[u8; 64]; 8]) -> [B256; 8] {
        // Transpose: word `w` of every input into one register.
        let mut words = [[0u64; 8]; 8];
        for (lane, input) in inputs.iter().enumerate() {
            for (w, chunk) in input.chunks_exact(8).enumerate() {
                let mut le = [0u8; 8];
                le.copy_from_slice(chunk);
                words[w][lane] = u64::from_le_bytes(le);
            }
        }
        let mut a = [_mm512_setzero_si512(); 25];
        for (w, lanes) in words.iter().enumerate() {
            // SAFETY: `lanes` is 64 readable bytes; unaligned loads are allowed.
            a[w] = unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) };
        }
        // The 64 bytes end at word 8: its first byte opens the padding, and
        // the last byte of the rate (word 16's top byte) closes it.
        a[8] = _mm512_set1_epi64(0x01);
        a[16] = _mm512_set1_epi64(i64::MIN);
        permute(&mut a);
        let mut out = [[0u64; 8]; 4];
        for (w, lanes) in out.iter_mut().enumerate() {
            // SAFETY: `lanes` is 64 writable bytes; unaligned stores are allowed.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), a[w]) };
        }
        std::array::from_fn(|lane| {
            let mut hash = [0u8; 32];
            for (w, chunk) in hash.chunks_exact_mut(8).enumerate() {
                chunk.copy_from_slice(&out[w][lane].to_le_bytes());
            }
            B256::from(hash)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lane_equals_the_scalar_hash() {
        // Inputs whose bytes differ by lane and position, and the all-zero
        // and all-one edge cases.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..64 {
            let inputs: [[u8; 64]; 8] = std::array::from_fn(|lane| match (round, lane) {
                (0, 0) => [0; 64],
                (0, 1) => [0xff; 64],
                _ => std::array::from_fn(|_| next() as u8),
            });
            let got = keccak64_x8(&inputs);
            for (lane, input) in inputs.iter().enumerate() {
                assert_eq!(got[lane], keccak256(input), "round {round}, lane {lane}");
            }
        }
    }
}
