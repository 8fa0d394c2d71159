//! The crate README's "Direct allocator usage" block as a program, plus
//! checks (marked below) of what it printed.
use bop_rs::allocator::utils;

fn main() {
    unsafe {
        let ptr = utils::alloc(1024);
        let aligned_ptr = utils::alloc_aligned(64, 512); // 64-byte aligned
        let zeroed_ptr = utils::zalloc(256);

        let size = utils::malloc_usable_size(ptr);
        println!("Usable size: {} bytes", size);

        // Checks (not in the README).
        let zeroed = std::slice::from_raw_parts(zeroed_ptr, 256);
        println!(
            "64-byte aligned: {}, 256 zero bytes: {}",
            aligned_ptr as usize % 64 == 0,
            zeroed.iter().all(|&b| b == 0)
        );
        assert!(size >= 1024 && utils::malloc_usable_size(aligned_ptr) >= 512);
        assert!(aligned_ptr as usize % 64 == 0 && zeroed.iter().all(|&b| b == 0));

        utils::dealloc_sized(ptr, 1024);
        utils::dealloc_sized(aligned_ptr, 512);
        utils::dealloc_sized(zeroed_ptr, 256);
    }
}
