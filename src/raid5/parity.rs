//! Parity arithmetic of raid4/5/6 (crypto/xor.c, lib/raid6): XOR of
//! blocks, RAID-6 P and Q over GF(2^8) (polynomial 0x11d, generator 2)
//! and the recovery of any one or two missing blocks of a stripe
//! (lib/raid6/recov.c).  Byte for byte what md computes: Q is
//! `sum g^i * D_i` where `i` is a block's place in the syndrome order
//! (`raid6_idx_to_slot`, see `geometry`).
//!
//! The bulk loops work on 64-byte groups of eight u64 words, the way
//! lib/raid6/int.uc works on native words, so the compiler turns them into
//! vector code; on x86-64 a copy of them built for AVX2 is used when the
//! CPU has it.

/// Bytes handled per step of the bulk loops.
const GROUP: usize = 64;
const WORDS: usize = GROUP / 8;
type Group = [u64; WORDS];

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
const POLY: u64 = 0x1d1d_1d1d_1d1d_1d1d;

#[inline(always)]
fn load(b: &[u8]) -> Group {
    let mut w = [0u64; WORDS];
    for (i, x) in w.iter_mut().enumerate() {
        *x = u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    }
    w
}

#[inline(always)]
fn store(b: &mut [u8], w: &Group) {
    for (i, x) in w.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&x.to_ne_bytes());
    }
}

/// Every byte of `w` times 2 in GF(2^8) (int.uc's SHLBYTE and MASK).
#[inline(always)]
fn mul2(w: u64) -> u64 {
    let hi = w & HIGH;
    let mask = (hi << 1).wrapping_sub(hi >> 7);
    ((w & LOW7) << 1) ^ (mask & POLY)
}

/// GF(2^8) arithmetic of lib/raid6 (mktables.c), as tables.
pub mod gf {
    /// `raid6_gfexp`: 2^i for i in 0..256 (2^255 = 1).
    pub const EXP: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut v: u16 = 1;
        let mut i = 0;
        while i < 256 {
            t[i] = v as u8;
            v <<= 1;
            if v & 0x100 != 0 {
                v ^= 0x11d;
            }
            i += 1;
        }
        t
    };

    /// `raid6_gflog`: log2 of every non-zero byte (LOG[0] unused).
    pub const LOG: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut i = 0;
        while i < 255 {
            t[EXP[i] as usize] = i as u8;
            i += 1;
        }
        t
    };

    /// `a * b` in GF(2^8).
    pub const fn mul(a: u8, b: u8) -> u8 {
        if a == 0 || b == 0 {
            return 0;
        }
        EXP[(LOG[a as usize] as usize + LOG[b as usize] as usize) % 255]
    }

    /// The inverse of a non-zero `a` (`raid6_gfinv`); 0 for 0.
    pub const fn inv(a: u8) -> u8 {
        if a == 0 {
            return 0;
        }
        EXP[(255 - LOG[a as usize] as usize) % 255]
    }

    /// `g^i`.
    pub const fn exp(i: usize) -> u8 {
        EXP[i % 255]
    }

    /// The products of every byte with `c` (`raid6_gfmul[c]`).
    pub fn mul_table(c: u8) -> [u8; 256] {
        let mut t = [0u8; 256];
        for (i, x) in t.iter_mut().enumerate() {
            *x = mul(c, i as u8);
        }
        t
    }
}

/// Runs `$body` (an expression using only safe code) through a copy
/// compiled for AVX2 when the CPU has it, else the portable one.
macro_rules! dispatch {
    ($name:ident, ($($arg:ident : $ty:ty),*), $body:expr) => {{
        #[inline(always)]
        fn portable($($arg: $ty),*) {
            $body
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn avx2($($arg: $ty),*) {
            portable($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only requirement of `avx2`.
            return unsafe { avx2($($arg),*) };
        }
        portable($($arg),*)
    }};
}

/// `dst` = XOR of `srcs` (every one as long as `dst`; none: zeroes).
pub fn xor_blocks(dst: &mut [u8], srcs: &[&[u8]]) {
    assert!(srcs.iter().all(|s| s.len() == dst.len()), "block lengths");
    dispatch!(xor_blocks, (dst: &mut [u8], srcs: &[&[u8]]), {
        // Four groups of every source at a time: fewer passes over the
        // source list, longer runs of each stream.
        const SPAN: usize = 4 * GROUP;
        let bulk = dst.len() / SPAN * SPAN;
        let mut off = 0;
        while off < bulk {
            let mut acc = [[0u64; WORDS]; 4];
            for s in srcs {
                let s = &s[off..off + SPAN];
                for (g, a) in acc.iter_mut().enumerate() {
                    let w = load(&s[g * GROUP..(g + 1) * GROUP]);
                    for i in 0..WORDS {
                        a[i] ^= w[i];
                    }
                }
            }
            for (g, a) in acc.iter().enumerate() {
                store(&mut dst[off + g * GROUP..off + (g + 1) * GROUP], a);
            }
            off += SPAN;
        }
        for i in bulk..dst.len() {
            dst[i] = srcs.iter().fold(0, |a, s| a ^ s[i]);
        }
    })
}

/// `dst ^= c * src` over GF(2^8): folds a data block's change into Q
/// (`xor_syndrome`'s work for one block, `c` being `g` to the block's
/// place in the syndrome).
pub fn xor_mul_into(dst: &mut [u8], src: &[u8], c: u8) {
    assert_eq!(dst.len(), src.len(), "block lengths");
    let table = gf::mul_table(c);
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= table[*s as usize];
    }
}

/// `dst ^= src`.
pub fn xor_into(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "block lengths");
    dispatch!(xor_into, (dst: &mut [u8], src: &[u8]), {
        let bulk = dst.len() / GROUP * GROUP;
        let mut off = 0;
        while off < bulk {
            let mut a = load(&dst[off..off + GROUP]);
            let b = load(&src[off..off + GROUP]);
            for i in 0..WORDS {
                a[i] ^= b[i];
            }
            store(&mut dst[off..off + GROUP], &a);
            off += GROUP;
        }
        for i in bulk..dst.len() {
            dst[i] ^= src[i];
        }
    })
}

/// `gen_syndrome`: P and Q of the data blocks `data`, in syndrome order
/// (`data[i]` is multiplied by `g^i`); `None` is a block of zeroes (the
/// P and Q places of a DDF layout's order).  Either output may be left
/// out.
pub fn gen_syndrome(data: &[Option<&[u8]>], p: Option<&mut [u8]>, q: Option<&mut [u8]>) {
    let len = match (&p, &q) {
        (Some(p), _) => p.len(),
        (None, Some(q)) => q.len(),
        (None, None) => return,
    };
    assert!(
        data.iter().flatten().all(|d| d.len() == len),
        "block lengths"
    );
    assert!(q.as_ref().is_none_or(|q| q.len() == len), "block lengths");
    if q.is_none() {
        let srcs: Vec<&[u8]> = data.iter().flatten().copied().collect();
        xor_blocks(p.expect("P"), &srcs);
        return;
    }
    let mut scratch = Vec::new();
    let p = match p {
        Some(p) => p,
        None => {
            scratch.resize(len, 0);
            &mut scratch[..]
        }
    };
    syndrome(data, p, q.expect("Q"));
}

fn syndrome(data: &[Option<&[u8]>], p: &mut [u8], q: &mut [u8]) {
    dispatch!(syndrome, (data: &[Option<&[u8]>], p: &mut [u8], q: &mut [u8]), {
        let len = p.len();
        let bulk = len / GROUP * GROUP;
        let mut off = 0;
        while off < bulk {
            let mut wp = [0u64; WORDS];
            let mut wq = [0u64; WORDS];
            // Horner's rule from the highest block down, as int.uc.
            for d in data.iter().rev() {
                for w in wq.iter_mut() {
                    *w = mul2(*w);
                }
                if let Some(d) = d {
                    let w = load(&d[off..off + GROUP]);
                    for i in 0..WORDS {
                        wp[i] ^= w[i];
                        wq[i] ^= w[i];
                    }
                }
            }
            store(&mut p[off..off + GROUP], &wp);
            store(&mut q[off..off + GROUP], &wq);
            off += GROUP;
        }
        for i in bulk..len {
            let (mut bp, mut bq) = (0u8, 0u8);
            for d in data.iter().rev() {
                bq = gf::mul(bq, 2);
                if let Some(d) = d {
                    bp ^= d[i];
                    bq ^= d[i];
                }
            }
            p[i] = bp;
            q[i] = bq;
        }
    })
}

/// `dst[i] = table[dst[i]]`: a GF multiplication by the table's constant.
fn mul_in_place(dst: &mut [u8], table: &[u8; 256]) {
    for b in dst {
        *b = table[*b as usize];
    }
}

/// Rebuild the missing blocks of a RAID-6 stripe, as lib/raid6/recov.c
/// does: `blocks` holds the `n` data blocks in syndrome order, then P,
/// then Q; `zero[i]` marks a data place that is a block of zeroes (DDF's
/// P and Q places), which is never missing; `failed` names one or two
/// indices of `blocks` whose contents are rebuilt from the others.
pub fn raid6_recover(blocks: &mut [&mut [u8]], zero: &[bool], failed: &[usize]) {
    let disks = blocks.len();
    assert!(disks >= 3, "a raid6 stripe has data, P and Q");
    let n = disks - 2;
    let (pi, qi) = (n, n + 1);
    let mut failed: Vec<usize> = failed.to_vec();
    failed.sort_unstable();
    failed.dedup();
    assert!(
        failed.len() <= 2
            && failed
                .iter()
                .all(|&f| f < disks && !zero.get(f).copied().unwrap_or(false))
    );
    let len = blocks[0].len();
    // The syndrome of the blocks present, the failed ones counted as 0.
    let partial = |blocks: &[&mut [u8]], p: Option<&mut [u8]>, q: Option<&mut [u8]>| {
        let data: Vec<Option<&[u8]>> = (0..n)
            .map(|i| {
                (!failed.contains(&i) && !zero.get(i).copied().unwrap_or(false))
                    .then_some(&*blocks[i])
            })
            .collect();
        gen_syndrome(&data, p, q);
    };
    match failed[..] {
        [] => {}
        // P, Q or both: generate what is missing.
        [i] if i >= n => {
            let mut out = vec![0u8; len];
            if i == pi {
                partial(blocks, Some(&mut out), None);
            } else {
                partial(blocks, None, Some(&mut out));
            }
            blocks[i].copy_from_slice(&out);
        }
        [i, j] if i == pi && j == qi => {
            let (mut p, mut q) = (vec![0u8; len], vec![0u8; len]);
            partial(blocks, Some(&mut p), Some(&mut q));
            blocks[pi].copy_from_slice(&p);
            blocks[qi].copy_from_slice(&q);
        }
        // One data block (and perhaps Q): from P, as raid5 does.
        [x] | [x, _] if failed.get(1).is_none_or(|&j| j == qi) => {
            let mut d = vec![0u8; len];
            partial(blocks, Some(&mut d), None);
            xor_into(&mut d, blocks[pi]);
            blocks[x].copy_from_slice(&d);
            if failed.len() == 2 {
                let mut q = vec![0u8; len];
                let data: Vec<Option<&[u8]>> = (0..n)
                    .map(|i| (!zero.get(i).copied().unwrap_or(false)).then_some(&*blocks[i]))
                    .collect();
                gen_syndrome(&data, None, Some(&mut q));
                blocks[qi].copy_from_slice(&q);
            }
        }
        // A data block and P (raid6_datap_recov): from Q.
        [x, j] if j == pi => {
            let mut qx = vec![0u8; len];
            partial(blocks, None, Some(&mut qx));
            xor_into(&mut qx, blocks[qi]);
            // Dx = (Q + Qx) / g^x
            mul_in_place(&mut qx, &gf::mul_table(gf::inv(gf::exp(x))));
            blocks[x].copy_from_slice(&qx);
            let mut p = vec![0u8; len];
            let data: Vec<Option<&[u8]>> = (0..n)
                .map(|i| (!zero.get(i).copied().unwrap_or(false)).then_some(&*blocks[i]))
                .collect();
            gen_syndrome(&data, Some(&mut p), None);
            blocks[pi].copy_from_slice(&p);
        }
        // Two data blocks (raid6_2data_recov).
        [x, y] => {
            let (mut pxy, mut qxy) = (vec![0u8; len], vec![0u8; len]);
            partial(blocks, Some(&mut pxy), Some(&mut qxy));
            xor_into(&mut pxy, blocks[pi]); // Dx + Dy
            xor_into(&mut qxy, blocks[qi]); // g^x Dx + g^y Dy
            // Dy = (Qxy + g^x Pxy) / (g^x + g^y); Dx = Pxy + Dy.
            let gx = gf::exp(x);
            let by_gx = gf::mul_table(gx);
            let by_inv = gf::mul_table(gf::inv(gx ^ gf::exp(y)));
            let mut dy = vec![0u8; len];
            for i in 0..len {
                dy[i] = by_inv[(qxy[i] ^ by_gx[pxy[i] as usize]) as usize];
            }
            xor_into(&mut pxy, &dy);
            blocks[x].copy_from_slice(&pxy);
            blocks[y].copy_from_slice(&dy);
        }
        _ => unreachable!("at most two failed blocks"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// P and Q byte by byte, from the definition.
    fn reference(data: &[Option<Vec<u8>>], len: usize) -> (Vec<u8>, Vec<u8>) {
        let (mut p, mut q) = (vec![0u8; len], vec![0u8; len]);
        for (i, d) in data.iter().enumerate() {
            if let Some(d) = d {
                for k in 0..len {
                    p[k] ^= d[k];
                    q[k] ^= gf::mul(gf::exp(i), d[k]);
                }
            }
        }
        (p, q)
    }

    #[test]
    fn field_tables() {
        assert_eq!(gf::EXP[0], 1);
        assert_eq!(gf::EXP[8], 0x1d);
        assert_eq!(gf::EXP[255], 1);
        for a in 1..=255u8 {
            assert_eq!(gf::mul(a, gf::inv(a)), 1, "{a}");
        }
        for w in [0u64, u64::MAX, 0x8001_40ff_7f80_0102] {
            let got = mul2(w).to_ne_bytes();
            for (k, b) in w.to_ne_bytes().iter().enumerate() {
                assert_eq!(got[k], gf::mul(*b, 2));
            }
        }
    }

    /// The syndrome of lib/raid6's own test vector style: block i all
    /// bytes i+1, so Q = sum g^i (i+1).
    #[test]
    fn known_syndrome() {
        let blocks: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8 + 1; 100]).collect();
        let data: Vec<Option<&[u8]>> = blocks.iter().map(|b| Some(&b[..])).collect();
        let (mut p, mut q) = (vec![0; 100], vec![0; 100]);
        gen_syndrome(&data, Some(&mut p), Some(&mut q));
        // P = 1^2^3^4 = 4; Q = 1 + 2*2 + 4*3 + 8*4 = 1^4^0xc^0x20 = 0x29.
        assert!(p.iter().all(|&b| b == 4));
        assert!(q.iter().all(|&b| b == 0x29));
    }

    fn stripe(n: usize, len: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), len), n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn syndrome_matches_definition(
            (data, zeros) in (1usize..8, 1usize..300).prop_flat_map(|(n, len)| (stripe(n, len), proptest::collection::vec(any::<bool>(), n)))
        ) {
            let len = data[0].len();
            let opt: Vec<Option<Vec<u8>>> = data.iter().zip(&zeros).map(|(d, z)| (!z).then(|| d.clone())).collect();
            let refs: Vec<Option<&[u8]>> = opt.iter().map(|d| d.as_deref()).collect();
            let (mut p, mut q) = (vec![0; len], vec![0; len]);
            gen_syndrome(&refs, Some(&mut p), Some(&mut q));
            let (rp, rq) = reference(&opt, len);
            prop_assert_eq!(&p, &rp);
            prop_assert_eq!(&q, &rq);
            let mut x = vec![0; len];
            let present: Vec<&[u8]> = refs.iter().flatten().copied().collect();
            xor_blocks(&mut x, &present);
            prop_assert_eq!(&x, &rp);
        }

        /// Any one or two blocks of a stripe, data, P or Q, come back.
        #[test]
        fn recovery_inverts_generation(
            (data, a, b, zmask) in (2usize..10, 1usize..200).prop_flat_map(|(n, len)| (stripe(n, len), 0..n + 2, 0..n + 2, any::<u16>()))
        ) {
            let n = data.len();
            let len = data[0].len();
            // A zero place (DDF) is never a failed one.
            let zero: Vec<bool> = (0..n).map(|i| i != a && i != b && zmask & (1 << i) != 0).collect();
            let data: Vec<Vec<u8>> = data.into_iter().zip(&zero).map(|(d, &z)| if z { vec![0; len] } else { d }).collect();
            let refs: Vec<Option<&[u8]>> = data.iter().zip(&zero).map(|(d, &z)| (!z).then_some(&d[..])).collect();
            let (mut p, mut q) = (vec![0; len], vec![0; len]);
            gen_syndrome(&refs, Some(&mut p), Some(&mut q));
            let mut want: Vec<Vec<u8>> = data.clone();
            want.push(p);
            want.push(q);
            let mut got = want.clone();
            for &f in &[a, b] {
                got[f].iter_mut().for_each(|x| *x = 0xa5);
            }
            let mut views: Vec<&mut [u8]> = got.iter_mut().map(|v| &mut v[..]).collect();
            raid6_recover(&mut views, &zero, &[a, b]);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_block_change_folded_into_q_equals_the_syndrome_made_afresh() {
        let len = 4096;
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let old: Vec<Vec<u8>> = (0..5).map(|_| (0..len).map(|_| next()).collect()).collect();
        let mut new = old.clone();
        for b in &mut new[3][100..900] {
            *b = next();
        }
        let syndrome = |d: &[Vec<u8>]| {
            let (mut p, mut q) = (vec![0u8; len], vec![0u8; len]);
            let data: Vec<Option<&[u8]>> = d.iter().map(|b| Some(&b[..])).collect();
            gen_syndrome(&data, Some(&mut p), Some(&mut q));
            (p, q)
        };
        let (mut p, mut q) = syndrome(&old);
        let mut delta = old[3].clone();
        xor_into(&mut delta, &new[3]);
        xor_into(&mut p, &delta);
        xor_mul_into(&mut q, &delta, gf::exp(3));
        assert_eq!((p, q), syndrome(&new));
    }
}
