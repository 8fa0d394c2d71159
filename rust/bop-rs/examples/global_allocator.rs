//! The crate README's "Global allocator" program, plus a check (marked
//! below) that bop served its blocks.
use bop_rs::allocator::BopAllocator;

#[global_allocator]
static GLOBAL: BopAllocator = BopAllocator;

fn main() {
    // All allocations now go through bop
    let vec: Vec<i32> = (0..1000).collect();
    let string = String::from("Hello from bop!");
    let boxed = Box::new(42u64);
    println!("{} {} {}", vec.len(), string, boxed);

    // Check (not in the README): bop knows the Vec's buffer as one of its
    // blocks, and the values are what was stored.
    // SAFETY: the buffer is a live block of GLOBAL, that is, of bop.
    let usable = unsafe { bop_rs::allocator::utils::malloc_usable_size(vec.as_ptr() as *const u8) };
    println!(
        "bop block behind the Vec: {} usable bytes for {} asked",
        usable,
        vec.capacity() * 4
    );
    assert!(usable >= vec.capacity() * 4);
    assert!(vec.iter().sum::<i32>() == 499_500 && string.len() == 15 && *boxed == 42);
}
