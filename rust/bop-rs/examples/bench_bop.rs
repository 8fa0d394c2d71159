//! The Rust benchmark under `BopAllocator` (run `bench/rust` in the bop tree
//! to compare it with the system allocator, jemalloc and mimalloc).
#[path = "bench_common/workloads.rs"]
mod workloads;

use bop_rs::allocator::BopAllocator;

#[global_allocator]
static GLOBAL: BopAllocator = BopAllocator;

fn main() {
    workloads::run_all();
}
