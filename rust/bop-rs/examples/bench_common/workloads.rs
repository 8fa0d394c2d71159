//! Rust-shaped allocation work for the benchmark examples `bench_bop` and
//! `bench_system` (the same code under two global allocators). Each workload
//! prints `workload <name> <wall ms> <cpu ms> <checksum>` (cpu: the process's
//! CPU time, all threads, less disturbed than wall time by other load on the
//! machine); the checksum keeps the work from being optimised away and must
//! match across allocators.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// xorshift64*: a fixed sequence, so every allocator does the same work.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// A map of 100k string keys to byte vectors: fill, remove and re-insert
/// half, look up, drop.
fn btree_map(rounds: usize) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sum = 0u64;
    for _ in 0..rounds {
        let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for i in 0..100_000u64 {
            let key = format!("key-{:016x}", rng.next() ^ i);
            let value = vec![i as u8; rng.below(200)];
            map.insert(key, value);
        }
        let keys: Vec<String> = map.keys().step_by(2).cloned().collect();
        for k in &keys {
            sum += map.remove(k).map_or(0, |v| v.len() as u64);
        }
        for k in keys {
            let n = rng.below(64);
            map.insert(k, vec![1; n]);
        }
        sum += map.values().map(|v| v.len() as u64).sum::<u64>();
    }
    sum
}

/// 20k live boxed slices of 8 B to 4 KiB, one replaced at random per step.
fn vec_box_churn(steps: usize) -> u64 {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut slots: Vec<Box<[u8]>> = (0..20_000)
        .map(|_| vec![0u8; 8].into_boxed_slice())
        .collect();
    let mut sum = 0u64;
    for _ in 0..steps {
        let i = rng.below(slots.len() as u64);
        let size = 8 + if rng.below(16) == 0 {
            rng.below(4088)
        } else {
            rng.below(248)
        };
        let fresh = vec![size as u8; size].into_boxed_slice();
        sum += slots[i].len() as u64;
        slots[i] = fresh;
    }
    sum
}

/// Boxes made on one thread and dropped on another, through a channel.
fn channel_boxes(count: usize) -> u64 {
    let (tx, rx) = mpsc::sync_channel::<Box<[u8]>>(1024);
    let producer = thread::spawn(move || {
        let mut rng = Rng(0xA076_1D64_78BD_642F);
        for _ in 0..count {
            let size = 16 + rng.below(1008);
            tx.send(vec![7u8; size].into_boxed_slice()).unwrap();
        }
    });
    let mut sum = 0u64;
    for b in rx {
        sum += b[b.len() - 1] as u64 + b.len() as u64;
    }
    producer.join().unwrap();
    sum
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID), in ms.
fn cpu_ms() -> f64 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out-parameter.
    unsafe { clock_gettime(2, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn time(name: &str, work: impl FnOnce() -> u64) {
    if let Ok(only) = std::env::var("BOP_RS_BENCH_ONLY") {
        if only != name {
            return;
        }
    }
    let start = Instant::now();
    let cpu_start = cpu_ms();
    let checksum = work();
    let cpu = cpu_ms() - cpu_start;
    let wall = start.elapsed().as_secs_f64() * 1e3;
    println!("workload {} {:.3} {:.3} {}", name, wall, cpu, checksum);
}

/// Runs every workload once (`BOP_RS_BENCH_SCALE`, default 1, multiplies the
/// work; `BOP_RS_BENCH_ONLY=<name>` runs one, e.g. under callgrind).
pub fn run_all() {
    let scale: usize = std::env::var("BOP_RS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    time("btree_map", || btree_map(2 * scale));
    time("vec_box_churn", || vec_box_churn(2_000_000 * scale));
    time("channel_boxes", || channel_boxes(500_000 * scale));
}
