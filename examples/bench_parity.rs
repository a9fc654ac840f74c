//! Throughput of the parity arithmetic on one core, next to a memcpy of
//! the same bytes (run by scripts/bench-parity).  Each test reads the
//! data blocks of a stripe (64 KiB chunks, sized to stay in the L2/L3
//! caches as md's stripe pages do) and writes the parity.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mdfuse::raid5::parity::{gen_syndrome, raid6_recover, xor_blocks};

const CHUNK: usize = 64 << 10;

/// Bytes per second of `f`, which handles `bytes` per call, over about
/// `secs`.
fn rate(bytes: usize, secs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    (n as f64 * bytes as f64) / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!(
        "# one core, {} KiB chunks; GB/s of data bytes read",
        CHUNK >> 10
    );
    println!(
        "{:<28} {:>10} {:>10} {:>7}",
        "test", "GB/s", "memcpy", "ratio"
    );
    for ndata in [2usize, 3, 4, 8] {
        let data: Vec<Vec<u8>> = (0..ndata)
            .map(|i| (0..CHUNK).map(|k| (k * 31 + i * 7) as u8).collect())
            .collect();
        let bytes = ndata * CHUNK;
        let mut src = vec![1u8; bytes];
        let mut dst = vec![0u8; bytes];
        let memcpy = rate(bytes, secs, || {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        });
        src[0] = 0;
        let (mut p, mut q) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        let xor = rate(bytes, secs, || {
            xor_blocks(&mut p, black_box(&refs));
            black_box(&mut p);
        });
        let opt: Vec<Option<&[u8]>> = refs.iter().map(|r| Some(*r)).collect();
        let pq = rate(bytes, secs, || {
            gen_syndrome(black_box(&opt), Some(&mut p), Some(&mut q));
            black_box((&mut p, &mut q));
        });
        let mut stripe: Vec<Vec<u8>> = data.clone();
        stripe.push(p.clone());
        stripe.push(q.clone());
        let zero = vec![false; ndata];
        let rec2 = rate(bytes, secs, || {
            let mut views: Vec<&mut [u8]> = stripe.iter_mut().map(|v| &mut v[..]).collect();
            raid6_recover(&mut views, &zero, &[0, 1]);
            black_box(&mut views);
        });
        let gb = |x: f64| x / 1e9;
        for (name, r) in [
            (format!("xor {ndata}+1"), xor),
            (format!("raid6 P+Q {ndata}+2"), pq),
            (format!("raid6 2-data recovery {ndata}+2"), rec2),
        ] {
            println!(
                "{name:<28} {:>10.2} {:>10.2} {:>7.2}",
                gb(r),
                gb(memcpy),
                r / memcpy
            );
        }
    }
}
