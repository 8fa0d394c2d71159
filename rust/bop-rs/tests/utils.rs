//! bop_rs::allocator::utils: the documented sequence and the edges.

use bop_rs::allocator::utils;

fn all_zero(p: *const u8, n: usize) -> bool {
    (0..n).all(|i| unsafe { *p.add(i) } == 0)
}

#[test]
fn documented_sequence() {
    unsafe {
        let ptr = utils::alloc(1024);
        let aligned_ptr = utils::alloc_aligned(64, 512); // 64-byte aligned
        let zeroed_ptr = utils::zalloc(256);
        assert!(!ptr.is_null() && !aligned_ptr.is_null() && !zeroed_ptr.is_null());
        assert!(utils::malloc_usable_size(ptr) >= 1024);
        assert_eq!(aligned_ptr as usize % 64, 0);
        assert!(utils::malloc_usable_size(aligned_ptr) >= 512);
        assert!(utils::malloc_usable_size(zeroed_ptr) >= 256);
        assert!(all_zero(zeroed_ptr, 256));
        std::ptr::write_bytes(ptr, 0xAB, 1024);
        std::ptr::write_bytes(aligned_ptr, 0xCD, 512);
        utils::dealloc_sized(ptr, 1024);
        utils::dealloc_sized(aligned_ptr, 512);
        utils::dealloc_sized(zeroed_ptr, 256);
    }
}

#[test]
fn alignment_comes_first() {
    unsafe {
        // 4096-aligned, 100 bytes (swapped, it would be alignment 100: null).
        let page = utils::zalloc_aligned(4096, 100);
        assert!(!page.is_null());
        assert_eq!(page as usize % 4096, 0);
        assert!(all_zero(page, 100));
        utils::dealloc_sized(page, 100);
        for shift in 0..=20 {
            let align = 1usize << shift;
            let p = utils::alloc_aligned(align, 3);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            utils::dealloc(p);
        }
        // Not a power of two: null.
        assert!(utils::alloc_aligned(100, 4096).is_null());
        assert!(utils::zalloc_aligned(3, 64).is_null());
        assert!(utils::alloc_aligned(0, 64).is_null());
    }
}

#[test]
fn zalloc_after_dirty_free_and_edges() {
    unsafe {
        for _ in 0..20 {
            let d = utils::alloc(5000);
            std::ptr::write_bytes(d, 0xEE, 5000);
            utils::dealloc(d);
            let z = utils::zalloc(5000);
            assert!(all_zero(z, 5000));
            utils::dealloc_sized(z, 5000);
        }
        let a = utils::alloc(0);
        let b = utils::alloc(0);
        assert!(!a.is_null() && !b.is_null() && a != b);
        utils::dealloc(a);
        utils::dealloc_sized(b, 0);
        utils::dealloc(std::ptr::null_mut());
        assert_eq!(utils::malloc_usable_size(std::ptr::null()), 0);
        assert!(utils::alloc(usize::MAX).is_null());
        assert!(utils::zalloc(usize::MAX - 4096).is_null());
    }
}
