//! bop as the program's global allocator: every `Vec`, `String` and `Box`
//! below is a bop block.
use bop_rs::allocator::BopAllocator;

#[global_allocator]
static GLOBAL: BopAllocator = BopAllocator;

fn main() {
    // All allocations now go through bop
    let vec: Vec<i32> = (0..1000).collect();
    let mut string = String::from("Hello from bop! ");
    for _ in 0..5 {
        string.push_str("more text ");
    }
    let boxed = Box::new(42u64);

    println!(
        "Vec<i32> with {} elements, sum {}",
        vec.len(),
        vec.iter().sum::<i32>()
    );
    println!("String of {} bytes: {:?}", string.len(), &string[..15]);
    println!("Box<u64> holding {}", boxed);

    // bop knows the blocks: its usable size of the Vec's buffer.
    // SAFETY: the buffer is a live block from GLOBAL, that is, from bop.
    let usable = unsafe { bop_rs::allocator::utils::malloc_usable_size(vec.as_ptr() as *const u8) };
    println!(
        "bop block behind the Vec: {} usable bytes for {} asked",
        usable,
        vec.capacity() * 4
    );
    assert!(vec.len() == 1000 && string.len() == 66 && *boxed == 42);
    assert!(usable >= vec.capacity() * 4);
}
