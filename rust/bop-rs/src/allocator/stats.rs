//! `BopStatsAllocator`: bop plus exact counters, kept by the same C++
//! recorder as `bop::BopStatsAllocator`, so Rust and C++ report the same
//! numbers for the same work.

use std::alloc::{GlobalAlloc, Layout};
use std::fmt;
use std::os::raw::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi;

/// A snapshot of a [`BopStatsAllocator`]'s counters.
///
/// Bytes are the sizes asked for ([`Layout::size`]), not the rounded-up block
/// sizes. A `realloc` is not an allocation event: the counts stay, growth
/// adds to `bytes_allocated`, shrinking adds to `bytes_deallocated`. A
/// snapshot is consistent: no event is half-counted, `deallocations` never
/// exceeds `allocations` nor `bytes_deallocated` `bytes_allocated`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocationStats {
    /// Blocks handed out since the start or the last reset.
    pub allocations: usize,
    /// Blocks given back since the start or the last reset.
    pub deallocations: usize,
    /// Requested bytes handed out, `realloc` growth included.
    pub bytes_allocated: usize,
    /// Requested bytes given back, `realloc` shrinking included.
    pub bytes_deallocated: usize,
    /// The highest `current_memory` seen since the start or the last reset:
    /// exact for one thread; with N threads allocating at once it may be off
    /// by less than (N - 1) x 256 KiB (threads fold their counts into the
    /// shared total every 256 KiB of change).
    pub peak_memory: usize,
    /// Requested bytes live now (exact).
    pub current_memory: usize,
}

impl AllocationStats {
    /// Blocks allocated and not freed yet (`allocations - deallocations`).
    pub fn outstanding_allocations(&self) -> usize {
        self.allocations.saturating_sub(self.deallocations)
    }

    /// Bytes allocated and not freed yet (`bytes_allocated - bytes_deallocated`).
    pub fn outstanding_memory(&self) -> usize {
        self.bytes_allocated.saturating_sub(self.bytes_deallocated)
    }

    /// True when some block is still allocated.
    pub fn has_leaks(&self) -> bool {
        self.outstanding_allocations() != 0
    }
}

/// One line, the same text as C++'s `operator<<` for `bop::AllocationStats`:
/// `AllocationStats { allocations: 3, deallocations: 1, bytes_allocated: 300,
/// bytes_deallocated: 100, peak_memory: 300, current_memory: 200,
/// outstanding_allocations: 2 }`.
impl fmt::Display for AllocationStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AllocationStats {{ allocations: {}, deallocations: {}, bytes_allocated: {}, \
             bytes_deallocated: {}, peak_memory: {}, current_memory: {}, \
             outstanding_allocations: {} }}",
            self.allocations,
            self.deallocations,
            self.bytes_allocated,
            self.bytes_deallocated,
            self.peak_memory,
            self.current_memory,
            self.outstanding_allocations()
        )
    }
}

/// [`BopAllocator`](super::BopAllocator) that counts what goes through it
/// (feature `alloc-stats`).
///
/// ```
/// use bop_rs::allocator::BopStatsAllocator;
///
/// #[global_allocator]
/// static GLOBAL: BopStatsAllocator = BopStatsAllocator::new();
///
/// let before = GLOBAL.stats();
/// let v = vec![0u8; 1 << 20];
/// let during = GLOBAL.stats();
/// assert!(during.current_memory >= before.current_memory + v.len());
/// println!("Memory usage: {}", during);
/// ```
///
/// Counters live per thread (no shared cache line is written per allocation)
/// and are summed on read. Each block carries a 16-byte header (or one
/// alignment unit) holding its requested size. Every [`Layout`] alignment is
/// honoured, also by `realloc`. Blocks may be freed on any thread, but must
/// be freed through the allocator that made them, before it is dropped (a
/// `static` never is).
pub struct BopStatsAllocator {
    // The C++ bop::BopStatsAllocator, made on first use (so `new` can be a
    // `const fn`) and never replaced afterwards.
    handle: AtomicPtr<ffi::StatsHandle>,
}

impl BopStatsAllocator {
    /// A counting allocator with every counter at 0; usable in a `static`.
    pub const fn new() -> Self {
        BopStatsAllocator {
            handle: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> AllocationStats {
        let handle = self.handle.load(Ordering::Acquire);
        if handle.is_null() {
            return AllocationStats::default();
        }
        let mut raw = ffi::RawStats::default();
        // SAFETY: `handle` is a live instance (only Drop frees it) and `raw`
        // is a valid out-parameter.
        unsafe { ffi::bop_stats_allocator_get(handle, &mut raw) };
        AllocationStats {
            allocations: raw.allocations as usize,
            deallocations: raw.deallocations as usize,
            bytes_allocated: raw.bytes_allocated as usize,
            bytes_deallocated: raw.bytes_deallocated as usize,
            peak_memory: raw.peak_memory as usize,
            current_memory: raw.current_memory as usize,
        }
    }

    /// Forgets history but keeps what is live: afterwards `allocations`
    /// equals the live blocks, `bytes_allocated` equals `current_memory`,
    /// `deallocations` and `bytes_deallocated` are 0 and `peak_memory` equals
    /// `current_memory`. No counter wraps when the live blocks are freed
    /// later.
    pub fn reset_stats(&self) {
        let handle = self.handle.load(Ordering::Acquire);
        if !handle.is_null() {
            // SAFETY: a live instance.
            unsafe { ffi::bop_stats_allocator_reset(handle) };
        }
    }

    /// The C++ instance, created on the first allocation; null only when
    /// memory ran out.
    #[inline(always)]
    fn handle(&self) -> *mut ffi::StatsHandle {
        let handle = self.handle.load(Ordering::Acquire);
        if !handle.is_null() {
            return handle;
        }
        self.create_handle()
    }

    #[cold]
    #[inline(never)]
    fn create_handle(&self) -> *mut ffi::StatsHandle {
        // SAFETY: plain C call; null on out-of-memory.
        let fresh = unsafe { ffi::bop_stats_allocator_create() };
        if fresh.is_null() {
            return fresh;
        }
        match self.handle.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // Another thread made one first: counts go to that one.
                // SAFETY: `fresh` was never published.
                unsafe { ffi::bop_stats_allocator_destroy(fresh) };
                winner
            }
        }
    }
}

impl Default for BopStatsAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BopStatsAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BopStatsAllocator")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for BopStatsAllocator {
    fn drop(&mut self) {
        let handle = *self.handle.get_mut();
        if !handle.is_null() {
            // SAFETY: no block of this allocator may outlive it (documented).
            unsafe { ffi::bop_stats_allocator_destroy(handle) };
        }
    }
}

unsafe impl GlobalAlloc for BopStatsAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let handle = self.handle();
        if handle.is_null() {
            return ptr::null_mut();
        }
        ffi::bop_stats_allocator_alloc(handle, layout.align(), layout.size()) as *mut u8
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let handle = self.handle();
        if handle.is_null() {
            return ptr::null_mut();
        }
        ffi::bop_stats_allocator_zalloc(handle, layout.align(), layout.size()) as *mut u8
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // A block exists, so the handle does.
        let handle = self.handle.load(Ordering::Acquire);
        ffi::bop_stats_allocator_dealloc(handle, ptr as *mut c_void, layout.align(), layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let handle = self.handle.load(Ordering::Acquire);
        ffi::bop_stats_allocator_realloc(
            handle,
            ptr as *mut c_void,
            layout.align(),
            layout.size(),
            new_size,
        ) as *mut u8
    }
}
