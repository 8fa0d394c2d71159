//! Direct allocator usage: raw blocks through `bop_rs::allocator::utils`.
use bop_rs::allocator::utils;

fn main() {
    unsafe {
        let ptr = utils::alloc(1024);
        let aligned_ptr = utils::alloc_aligned(64, 512); // 64-byte aligned
        let zeroed_ptr = utils::zalloc(256);

        let size = utils::malloc_usable_size(ptr);
        println!("Usable size of the 1024-byte block: {} bytes", size);
        println!(
            "Aligned block at {:p}: 64-byte aligned: {}",
            aligned_ptr,
            aligned_ptr as usize % 64 == 0
        );
        let zeroed = std::slice::from_raw_parts(zeroed_ptr, 256);
        println!(
            "Zeroed block of 256 bytes all zero: {}",
            zeroed.iter().all(|&b| b == 0)
        );
        assert!(size >= 1024 && aligned_ptr as usize % 64 == 0);
        assert!(zeroed.iter().all(|&b| b == 0));

        utils::dealloc_sized(ptr, 1024);
        utils::dealloc_sized(aligned_ptr, 512);
        utils::dealloc_sized(zeroed_ptr, 256);
    }
}
