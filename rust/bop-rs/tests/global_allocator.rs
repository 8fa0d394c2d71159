//! BopAllocator as the global allocator of this test binary: std's
//! collections, every alignment, realloc across size classes, frees on other
//! threads, and proof that bop (not the system allocator) served the blocks.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::thread;

use bop_rs::allocator::{utils, BopAllocator};

#[global_allocator]
static GLOBAL: BopAllocator = BopAllocator;

extern "C" {
    // From bop.h: 8 counters, of which `mapped_bytes` (the address space bop
    // holds from the OS) is the 7th.
    fn bop_stats_get(out: *mut [u64; 8]);
}

fn bop_mapped_bytes() -> u64 {
    let mut raw = [0u64; 8];
    unsafe { bop_stats_get(&mut raw) };
    raw[6]
}

fn fill(p: *mut u8, n: usize, seed: u8) {
    for i in 0..n {
        unsafe { *p.add(i) = (i as u8).wrapping_mul(31).wrapping_add(seed) };
    }
}

fn check(p: *const u8, n: usize, seed: u8) -> bool {
    (0..n).all(|i| unsafe { *p.add(i) } == (i as u8).wrapping_mul(31).wrapping_add(seed))
}

const MIB: usize = 1 << 20;

#[test]
fn std_collections() {
    let v: Vec<u64> = (0..10_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 9_999 * 10_000 / 2);
    let mut s = String::new();
    for i in 0..1000 {
        s.push_str(&i.to_string());
    }
    assert!(s.starts_with("0123456789101112") && s.ends_with("998999"));
    let b = Box::new([7u8; 3000]);
    assert!(b.iter().all(|&x| x == 7));
    let mut h = HashMap::new();
    for i in 0..5000u32 {
        h.insert(format!("key{}", i), vec![i; (i % 17) as usize]);
    }
    for i in (0..5000u32).step_by(2) {
        h.remove(&format!("key{}", i));
    }
    assert_eq!(h.len(), 2500);
    assert_eq!(h["key4999"], vec![4999; 4999 % 17]);
    let mut t = BTreeMap::new();
    for i in 0..5000u32 {
        t.insert(i.wrapping_mul(2_654_435_761), i.to_string());
    }
    assert_eq!(t.len(), 5000);
    assert_eq!(
        t.values().map(|s| s.len()).sum::<usize>(),
        10 + 90 * 2 + 900 * 3 + 4000 * 4
    );
    // Each buffer is a bop block (bop_malloc_usable_size knows its size).
    unsafe {
        assert!(utils::malloc_usable_size(v.as_ptr() as *const u8) >= v.capacity() * 8);
        assert!(utils::malloc_usable_size(s.as_ptr()) >= s.capacity());
        assert!(utils::malloc_usable_size(b.as_ptr()) >= 3000);
    }
}

#[test]
fn bop_serves_the_global_allocations() {
    // A Box and a bop block of the same size come from the same bop page,
    // inside one 4 MiB-aligned bop segment (the system allocator's blocks
    // would sit in its own heap).
    let boxed = Box::new([1u8; 200]);
    let direct = unsafe { utils::alloc(200) };
    let segment = |p: usize| p >> 22;
    assert_eq!(segment(boxed.as_ptr() as usize), segment(direct as usize));
    unsafe {
        assert_eq!(
            utils::malloc_usable_size(boxed.as_ptr()),
            utils::malloc_usable_size(direct)
        );
        utils::dealloc_sized(direct, 200);
    }

    // A 64 MiB Vec is address space bop maps.
    let before = bop_mapped_bytes();
    let big = vec![1u8; 64 * MIB];
    let during = bop_mapped_bytes();
    assert!(
        during >= before + 64 * MIB as u64,
        "{} -> {}",
        before,
        during
    );
    assert_eq!(big[64 * MIB - 1], 1);
}

/// Sizes to try for one alignment: 0, tiny, around the alignment, bigger.
fn sizes_for(align: usize) -> Vec<usize> {
    let mut sizes = vec![
        0,
        1,
        7,
        8,
        9,
        16,
        24,
        100,
        align / 2,
        align,
        align + 1,
        3 * align + 5,
    ];
    sizes.retain(|&s| s <= 4 * MIB);
    sizes
}

#[test]
fn every_alignment_alloc_zeroed_realloc() {
    let a = BopAllocator;
    for shift in 0..=20 {
        let align = 1usize << shift;
        for size in sizes_for(align) {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null(), "alloc {} @ {}", size, align);
                assert_eq!(p as usize % align, 0, "alloc {} @ {}", size, align);
                fill(p, size, 3);

                let z = a.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert_eq!(z as usize % align, 0, "alloc_zeroed {} @ {}", size, align);
                assert!(
                    (0..size).all(|i| *z.add(i) == 0),
                    "zeroed {} @ {}",
                    size,
                    align
                );

                // Grow and shrink, keeping the alignment and the content.
                let grown_size = size * 2 + 4096;
                let g = a.realloc(p, layout, grown_size);
                assert!(!g.is_null());
                assert_eq!(g as usize % align, 0, "realloc up {} @ {}", size, align);
                assert!(check(g, size, 3));
                fill(g, grown_size, 4);
                let shrunk_size = size / 2;
                let s = a.realloc(
                    g,
                    Layout::from_size_align(grown_size, align).unwrap(),
                    shrunk_size,
                );
                assert!(!s.is_null());
                assert_eq!(s as usize % align, 0, "realloc down {} @ {}", size, align);
                assert!(check(s, shrunk_size, 4));
                a.dealloc(s, Layout::from_size_align(shrunk_size, align).unwrap());
                a.dealloc(z, layout);
            }
        }
    }
}

#[test]
fn realloc_keeps_contents_across_size_classes() {
    let sizes = [
        1,
        8,
        24,
        100,
        1000,
        5000,
        70_000,
        300_000,
        600_000,
        3 * MIB,
        10 * MIB,
    ];
    for &align in &[8usize, 64, 4096] {
        let a = BopAllocator;
        let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
        let mut p = unsafe { a.alloc(layout) };
        fill(p, layout.size(), 9);
        // Up through every class, then down again.
        let path: Vec<usize> = sizes[1..]
            .iter()
            .chain(sizes.iter().rev().skip(1))
            .copied()
            .collect();
        for &size in &path {
            let kept = layout.size().min(size);
            p = unsafe { a.realloc(p, layout, size) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            assert!(
                check(p, kept, 9),
                "content lost at {} -> {}",
                layout.size(),
                size
            );
            fill(p, size, 9);
            layout = Layout::from_size_align(size, align).unwrap();
        }
        unsafe { a.dealloc(p, layout) };
    }
    // The same through Vec's own growth.
    let mut v: Vec<u32> = Vec::new();
    for i in 0..3_000_000u32 {
        v.push(i);
    }
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, (0..10).collect::<Vec<u32>>());
}

#[test]
fn blocks_freed_on_another_thread() {
    let (tx, rx) = mpsc::channel::<Vec<Box<[u8]>>>();
    let consumer = thread::spawn(move || {
        let mut blocks = 0usize;
        for batch in rx {
            for (i, b) in batch.iter().enumerate() {
                assert!(b.iter().all(|&x| x == (i % 251) as u8));
            }
            blocks += batch.len();
            drop(batch); // freed here, not on the thread that allocated
        }
        blocks
    });
    let producers: Vec<_> = (0..3)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for round in 0..200 {
                    let batch: Vec<Box<[u8]>> = (0..100)
                        .map(|i| {
                            vec![(i % 251) as u8; 16 + (i * 37 + round) % 3000].into_boxed_slice()
                        })
                        .collect();
                    tx.send(batch).unwrap();
                }
                // The thread exits while its blocks are still in flight.
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 3 * 200 * 100);
}

#[test]
fn zero_size_and_failure() {
    let a = BopAllocator;
    unsafe {
        for &align in &[1usize, 16, 4096, MIB] {
            let layout = Layout::from_size_align(0, align).unwrap();
            let p = a.alloc(layout);
            let q = a.alloc(layout);
            assert!(!p.is_null() && !q.is_null() && p != q);
            assert_eq!(p as usize % align, 0);
            a.dealloc(p, layout);
            a.dealloc(q, layout);
        }
        // More than the address space: null, no abort.
        let huge = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
        assert!(a.alloc(huge).is_null());
        assert!(a.alloc_zeroed(huge).is_null());
        let small = Layout::from_size_align(64, 64).unwrap();
        let p = a.alloc(small);
        assert!(a.realloc(p, small, isize::MAX as usize - 4095).is_null());
        fill(p, 64, 1);
        assert!(check(p, 64, 1)); // still valid after the failed realloc
        a.dealloc(p, small);
    }
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(isize::MAX as usize - 1).is_err());
}
