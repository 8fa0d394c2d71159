//! The Rust benchmark under `std::alloc::System` (malloc: glibc's, or
//! jemalloc's or mimalloc's under `LD_PRELOAD`); see `bench_bop`.
#[path = "bench_common/workloads.rs"]
mod workloads;

use std::alloc::System;

#[global_allocator]
static GLOBAL: System = System;

fn main() {
    workloads::run_all();
}
