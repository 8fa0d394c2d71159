//! bop's allocators for Rust programs.
//!
//! - [`BopAllocator`]: install bop as the program's global allocator.
//! - `BopStatsAllocator` and `AllocationStats` (feature `alloc-stats`): the
//!   same, counting every allocation.
//! - [`utils`]: direct calls, for code that manages raw blocks itself.
//!
//! All of them call bop's C++ core (one implementation for C, C++ and Rust);
//! nothing here re-implements the allocator.
//!
//! ```
//! use bop_rs::allocator::BopAllocator;
//!
//! #[global_allocator]
//! static GLOBAL: BopAllocator = BopAllocator;
//!
//! let v: Vec<u64> = (0..1000).collect();
//! assert_eq!(v.iter().sum::<u64>(), 999 * 1000 / 2);
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::os::raw::c_void;

use crate::ffi;

#[cfg(feature = "alloc-stats")]
mod stats;
#[cfg(feature = "alloc-stats")]
pub use stats::{AllocationStats, BopStatsAllocator};

pub mod utils;

/// The alignment every plain bop block has, whatever its size: a Layout
/// asking no more than this is served by the plain entry points, which skip
/// the alignment checks.
const PLAIN_ALIGN: usize = 16;

#[inline(always)]
fn plain(align: usize) -> bool {
    align <= PLAIN_ALIGN
}

/// bop as a Rust global allocator.
///
/// A unit struct, so it can be a `static`:
///
/// ```
/// use bop_rs::allocator::BopAllocator;
///
/// #[global_allocator]
/// static GLOBAL: BopAllocator = BopAllocator;
/// ```
///
/// Every [`Layout`] alignment is honoured (any power of two, also by
/// `realloc` and for size 0, which direct callers may pass);
/// [`dealloc`](GlobalAlloc::dealloc) frees through bop's sized path, which is
/// faster than a plain free. Blocks may be freed on any thread. Allocation
/// failure returns null, as `GlobalAlloc` requires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BopAllocator;

unsafe impl GlobalAlloc for BopAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align()) {
            ffi::bop_alloc(layout.size()) as *mut u8
        } else {
            ffi::bop_alloc_aligned(layout.align(), layout.size()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align()) {
            ffi::bop_zalloc(layout.size()) as *mut u8
        } else {
            ffi::bop_zalloc_aligned(layout.align(), layout.size()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ffi::bop_dealloc_sized(ptr as *mut c_void, layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align()) {
            ffi::bop_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            ffi::bop_realloc_aligned(ptr as *mut c_void, layout.align(), new_size) as *mut u8
        }
    }
}
