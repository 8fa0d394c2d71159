//! Direct calls into bop, for code that manages raw blocks itself.
//!
//! ```
//! use bop_rs::allocator::utils;
//!
//! unsafe {
//!     let ptr = utils::alloc(1024);
//!     let aligned_ptr = utils::alloc_aligned(64, 512); // 64-byte aligned
//!     let zeroed_ptr = utils::zalloc(256);
//!     assert!(utils::malloc_usable_size(ptr) >= 1024);
//!     assert_eq!(aligned_ptr as usize % 64, 0);
//!     utils::dealloc_sized(ptr, 1024);
//!     utils::dealloc_sized(aligned_ptr, 512);
//!     utils::dealloc_sized(zeroed_ptr, 256);
//! }
//! ```
//!
//! Blocks from these functions are bop blocks: they may be freed on any
//! thread, by [`dealloc`] or [`dealloc_sized`], and also by
//! [`BopAllocator`](super::BopAllocator)'s `dealloc` when their Layout is
//! known. Every allocating function returns null when memory runs out (and
//! for an alignment that is not a power of two); none aborts.

use std::os::raw::c_void;

use crate::ffi;

/// Allocates `size` bytes, 16-aligned. Size 0 returns a unique pointer that
/// [`dealloc`] accepts. Null when memory runs out.
///
/// # Safety
/// The block must be freed exactly once, with [`dealloc`] or
/// [`dealloc_sized`], and not used afterwards.
#[inline]
pub unsafe fn alloc(size: usize) -> *mut u8 {
    ffi::bop_alloc(size) as *mut u8
}

/// Like [`alloc`], but the memory is zero (memory known to be fresh from the
/// OS is not cleared a second time).
///
/// # Safety
/// As for [`alloc`].
#[inline]
pub unsafe fn zalloc(size: usize) -> *mut u8 {
    ffi::bop_zalloc(size) as *mut u8
}

/// Allocates `size` bytes aligned to `alignment`, which must be a power of
/// two (any, also above the page size); null otherwise, or when memory runs
/// out. Note the order: alignment first, as in C's `aligned_alloc`.
///
/// # Safety
/// As for [`alloc`].
#[inline]
pub unsafe fn alloc_aligned(alignment: usize, size: usize) -> *mut u8 {
    ffi::bop_alloc_aligned(alignment, size) as *mut u8
}

/// Like [`alloc_aligned`], but the memory is zero.
///
/// # Safety
/// As for [`alloc`].
#[inline]
pub unsafe fn zalloc_aligned(alignment: usize, size: usize) -> *mut u8 {
    ffi::bop_zalloc_aligned(alignment, size) as *mut u8
}

/// Frees a block from any function of this module (null is ignored), from
/// any thread.
///
/// # Safety
/// `ptr` is null or a live bop block; it must not be used afterwards.
#[inline]
pub unsafe fn dealloc(ptr: *mut u8) {
    ffi::bop_dealloc(ptr as *mut c_void)
}

/// Frees a block with the size it was allocated with (or any size between
/// that and [`malloc_usable_size`]); faster than [`dealloc`]. A checked
/// build of the core (`BOP_RS_CHECKED=1` when building) aborts with a
/// `bop: ...` line on a size larger than the block.
///
/// # Safety
/// As for [`dealloc`], and `size` must be as described above.
#[inline]
pub unsafe fn dealloc_sized(ptr: *mut u8, size: usize) {
    ffi::bop_dealloc_sized(ptr as *mut c_void, size)
}

/// The bytes usable at `ptr` (at least the size asked for); 0 for null.
///
/// # Safety
/// `ptr` is null or a live bop block.
#[inline]
pub unsafe fn malloc_usable_size(ptr: *const u8) -> usize {
    ffi::bop_malloc_usable_size(ptr as *const c_void)
}
