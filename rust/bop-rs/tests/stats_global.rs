//! BopStatsAllocator as the global allocator: std's collections are
//! counted, exactly. A test without the harness (`harness = false`): this
//! `main` is the only thread, so nothing else allocates while it measures.

use bop_rs::allocator::BopStatsAllocator;
use std::collections::{BTreeMap, HashMap};

#[global_allocator]
static GLOBAL: BopStatsAllocator = BopStatsAllocator::new();

fn main() {
    std_collections_are_counted();
    println!("stats_global: ok");
}

fn std_collections_are_counted() {
    // One Vec buffer of exactly 1000 bytes.
    let before = GLOBAL.stats();
    let v: Vec<u8> = Vec::with_capacity(1000);
    let with = GLOBAL.stats();
    assert_eq!(with.allocations, before.allocations + 1);
    assert_eq!(with.current_memory, before.current_memory + 1000);
    drop(v);
    let after = GLOBAL.stats();
    assert_eq!(after.deallocations, with.deallocations + 1);
    assert_eq!(after.current_memory, before.current_memory);

    // A String, a Box, a HashMap and a BTreeMap all come and go.
    let base = GLOBAL.stats();
    {
        let s = "x".repeat(300);
        let b = Box::new([0u64; 64]);
        let mut h = HashMap::new();
        let mut t = BTreeMap::new();
        for i in 0..1000 {
            h.insert(i, i * 2);
            t.insert(i, i.to_string());
        }
        let live = GLOBAL.stats();
        assert!(live.current_memory >= base.current_memory + 300 + 512 + 1000 * 16);
        assert!(live.allocations >= base.allocations + 2 + 1000);
        assert_eq!(s.len() + b.len() + h.len() + t.len(), 300 + 64 + 2000);
    }
    let gone = GLOBAL.stats();
    assert_eq!(gone.current_memory, base.current_memory);
    assert_eq!(
        gone.outstanding_allocations(),
        base.outstanding_allocations()
    );

    // reset with the harness's blocks live: nothing wraps when they go.
    GLOBAL.reset_stats();
    let r = GLOBAL.stats();
    assert_eq!(r.deallocations, 0);
    assert_eq!(r.bytes_deallocated, 0);
    assert_eq!(r.bytes_allocated, r.current_memory);
    assert_eq!(r.peak_memory, r.current_memory);
    assert_eq!(r.allocations, r.outstanding_allocations());

    // A 10 MB peak, exactly (this thread alone allocates now).
    let block = vec![1u8; 10 << 20];
    assert_eq!(block[12345], 1);
    drop(block);
    let peak = GLOBAL.stats();
    assert_eq!(peak.peak_memory, r.current_memory + (10 << 20));
}
