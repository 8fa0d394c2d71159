//! BopStatsAllocator's counters, exactly, on private instances called
//! directly through GlobalAlloc (the test harness's own allocations go to the
//! system allocator, so nothing else is counted).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::thread;

use bop_rs::allocator::{utils, AllocationStats, BopStatsAllocator};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

#[test]
fn known_sequence_exact_counts() {
    let a = BopStatsAllocator::new();
    assert_eq!(a.stats(), AllocationStats::default());
    unsafe {
        let p = a.alloc(layout(100, 8));
        let q = a.alloc(layout(1000, 64));
        let z = a.alloc_zeroed(layout(50, 16));
        assert!((0..50).all(|i| *z.add(i) == 0));
        assert_eq!(q as usize % 64, 0);
        a.dealloc(p, layout(100, 8));
        let q = a.realloc(q, layout(1000, 64), 3000); // growth: +2000 bytes, no event
        assert_eq!(q as usize % 64, 0);
        let q = a.realloc(q, layout(3000, 64), 10); // shrinking: +2990 deallocated
        assert_eq!(q as usize % 64, 0);
        let s = a.stats();
        assert_eq!(
            s,
            AllocationStats {
                allocations: 3,
                deallocations: 1,
                bytes_allocated: 100 + 1000 + 50 + 2000,
                bytes_deallocated: 100 + 2990,
                peak_memory: 1000 + 50 + 2000,
                current_memory: 10 + 50,
            }
        );
        assert_eq!(s.outstanding_allocations(), 2);
        assert_eq!(s.outstanding_memory(), 60);
        assert!(s.has_leaks());

        // reset with two blocks live: history goes, the live blocks stay.
        a.reset_stats();
        let r = a.stats();
        assert_eq!(
            r,
            AllocationStats {
                allocations: 2,
                deallocations: 0,
                bytes_allocated: 60,
                bytes_deallocated: 0,
                peak_memory: 60,
                current_memory: 60,
            }
        );
        a.dealloc(q, layout(10, 64));
        a.dealloc(z, layout(50, 16));
    }
    let end = a.stats();
    assert_eq!(
        end,
        AllocationStats {
            allocations: 2,
            deallocations: 2,
            bytes_allocated: 60,
            bytes_deallocated: 60,
            peak_memory: 60,
            current_memory: 0,
        }
    );
    assert!(!end.has_leaks());
    assert_eq!(end.outstanding_memory(), 0);
}

#[test]
fn display_debug_and_value_traits() {
    let s = AllocationStats {
        allocations: 3,
        deallocations: 1,
        bytes_allocated: 300,
        bytes_deallocated: 100,
        peak_memory: 300,
        current_memory: 200,
    };
    let line = format!("{}", s);
    assert_eq!(
        line,
        "AllocationStats { allocations: 3, deallocations: 1, bytes_allocated: 300, \
         bytes_deallocated: 100, peak_memory: 300, current_memory: 200, \
         outstanding_allocations: 2 }"
    );
    assert!(!line.contains('\n'));
    assert!(format!("{:?}", s).contains("current_memory: 200"));
    let copy = s;
    let clone = copy;
    assert_eq!(copy, s);
    assert_eq!(clone, s);
    assert_ne!(s, AllocationStats::default());
    assert!(!AllocationStats::default().has_leaks());
    assert_eq!(AllocationStats::default().outstanding_allocations(), 0);
}

#[test]
fn every_alignment_through_the_counting_allocator() {
    let a = BopStatsAllocator::new();
    let mut bytes = 0usize;
    let mut blocks = 0usize;
    for shift in 0..=20 {
        let align = 1usize << shift;
        for &size in &[0usize, 1, 100, align, 5000] {
            unsafe {
                let p = a.alloc(layout(size, align));
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "alloc {} @ {}", size, align);
                let z = a.alloc_zeroed(layout(size, align));
                assert_eq!(z as usize % align, 0, "alloc_zeroed {} @ {}", size, align);
                assert!((0..size).all(|i| *z.add(i) == 0));
                std::ptr::write_bytes(p, 0x5A, size);
                let g = a.realloc(p, layout(size, align), size + 3000);
                assert_eq!(g as usize % align, 0, "realloc {} @ {}", size, align);
                assert!((0..size).all(|i| *g.add(i) == 0x5A));
                a.dealloc(g, layout(size + 3000, align));
                a.dealloc(z, layout(size, align));
                bytes += 2 * size + 3000;
                blocks += 2;
            }
        }
    }
    let s = a.stats();
    assert_eq!(s.allocations, blocks);
    assert_eq!(s.deallocations, blocks);
    assert_eq!(s.bytes_allocated, bytes);
    assert_eq!(s.bytes_deallocated, bytes);
    assert_eq!(s.current_memory, 0);
}

#[test]
fn frees_on_other_threads_are_counted() {
    let a = Arc::new(BopStatsAllocator::new());
    // Blocks made here, freed by four other threads.
    let blocks: Vec<usize> = (0..4000)
        .map(|i| unsafe { a.alloc(layout(16 + i % 700, 8)) } as usize)
        .collect();
    let chunks: Vec<Vec<(usize, usize)>> = (0..4)
        .map(|t| {
            (0..1000)
                .map(|j| {
                    let i = t * 1000 + j;
                    (blocks[i], 16 + i % 700)
                })
                .collect()
        })
        .collect();
    let total: usize = (0..4000).map(|i| 16 + i % 700).sum();
    let mid = a.stats();
    assert_eq!(mid.allocations, 4000);
    assert_eq!(mid.current_memory, total);
    assert_eq!(mid.peak_memory, total);
    let threads: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let a = Arc::clone(&a);
            thread::spawn(move || {
                for (p, size) in chunk {
                    unsafe { a.dealloc(p as *mut u8, layout(size, 8)) };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let end = a.stats();
    assert_eq!(end.deallocations, 4000);
    assert_eq!(end.bytes_deallocated, total);
    assert_eq!(end.current_memory, 0);
    assert!(!end.has_leaks());
}

#[test]
fn blocks_are_bop_blocks_with_a_header() {
    let a = BopStatsAllocator::new();
    unsafe {
        let p = a.alloc(layout(100, 8));
        // The block lives inside a bop block, 16 bytes after its start.
        let raw = p.sub(16);
        assert!(utils::malloc_usable_size(raw) >= 116);
        a.dealloc(p, layout(100, 8));
    }
    assert_eq!(a.stats().deallocations, 1);
}
