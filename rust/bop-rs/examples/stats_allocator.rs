//! The crate README's "Memory statistics" program (run with `--features
//! alloc-stats`), with real work where the README says "the program's work".
//! Every figure it prints is checked: the program fails if one is not what it
//! did.
use bop_rs::allocator::BopStatsAllocator;

#[global_allocator]
static GLOBAL: BopStatsAllocator = BopStatsAllocator::new();

const MB: usize = 1024 * 1024;

fn main() {
    // The Rust runtime holds a few blocks of its own (the stdout buffer made
    // by this first line, ...): the figures below are counted from here.
    println!("bop statistics example");
    GLOBAL.reset_stats();
    let runtime = GLOBAL.stats();

    // Basic allocations with a leak check
    {
        let number = Box::new(7u64);
        let text = "a".repeat(100);
        let live = GLOBAL.stats();
        println!(
            "Two blocks alive: {} bytes live",
            live.current_memory - runtime.current_memory
        );
        assert_eq!(
            live.outstanding_allocations(),
            runtime.outstanding_allocations() + 2
        );
        assert_eq!(live.current_memory, runtime.current_memory + 8 + 100);
        drop((number, text));
    }
    assert_eq!(GLOBAL.stats().current_memory, runtime.current_memory);

    // Vector growth
    GLOBAL.reset_stats();
    let mut numbers: Vec<i32> = Vec::new();
    for i in 0..1000 {
        numbers.push(i);
    }
    let growth = GLOBAL.stats();
    // Vec grows by realloc: one allocation event, the growth counted in bytes.
    println!(
        "After 1000 pushes: {} allocation, {} bytes live (capacity {} x 4 bytes)",
        growth.allocations - runtime.outstanding_allocations(),
        growth.current_memory - runtime.current_memory,
        numbers.capacity()
    );
    assert_eq!(growth.allocations - runtime.outstanding_allocations(), 1);
    assert_eq!(
        growth.current_memory - runtime.current_memory,
        numbers.capacity() * 4
    );
    drop(numbers);

    // Peak tracking: vectors of 1, 5, 10, 3 and 7 MB, one at a time
    GLOBAL.reset_stats();
    for mb in [1, 5, 10, 3, 7] {
        let block = vec![0u8; mb * MB];
        let now = GLOBAL.stats();
        println!(
            "{:2} MB vector: peak so far {} bytes ({} of the runtime + {})",
            mb,
            now.peak_memory,
            runtime.current_memory,
            now.peak_memory - runtime.current_memory
        );
        drop(block);
    }

    // Ten boxes leaked on purpose
    for i in 0..10u64 {
        Box::leak(Box::new(i));
    }

    let stats = GLOBAL.stats();
    println!("Memory usage: {}", stats);
    println!("Peak memory: {} bytes", stats.peak_memory);
    if stats.has_leaks() {
        println!(
            "Memory leaks detected: {} allocations",
            stats.outstanding_allocations()
        );
    }
    println!(
        "(10 boxes leaked on purpose, {} blocks held by the Rust runtime)",
        runtime.outstanding_allocations()
    );
    assert_eq!(stats.peak_memory, runtime.current_memory + 10 * MB);
    assert_eq!(
        stats.outstanding_allocations(),
        runtime.outstanding_allocations() + 10
    );
    assert_eq!(stats.outstanding_memory(), runtime.current_memory + 10 * 8);
}
