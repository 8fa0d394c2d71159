//! The C functions of bop's core this crate calls (`include/bop/bop.h` and
//! `include/bop/stats_allocator.h`), linked from the static `libbop.a` that
//! `build.rs` builds.

#[cfg(feature = "alloc-stats")]
use std::os::raw::c_ulonglong;
use std::os::raw::c_void;

extern "C" {
    pub fn bop_alloc(size: usize) -> *mut c_void;
    pub fn bop_zalloc(size: usize) -> *mut c_void;
    pub fn bop_alloc_aligned(alignment: usize, size: usize) -> *mut c_void;
    pub fn bop_zalloc_aligned(alignment: usize, size: usize) -> *mut c_void;
    pub fn bop_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    pub fn bop_realloc_aligned(p: *mut c_void, alignment: usize, size: usize) -> *mut c_void;
    pub fn bop_dealloc(p: *mut c_void);
    pub fn bop_dealloc_sized(p: *mut c_void, size: usize);
    pub fn bop_malloc_usable_size(p: *const c_void) -> usize;
}

/// A C `bop_stats_allocator` (a `bop::BopStatsAllocator` object).
#[cfg(feature = "alloc-stats")]
#[repr(C)]
pub struct StatsHandle {
    _private: [u8; 0],
}

/// `bop_allocation_stats`: six `unsigned long long` counters.
#[cfg(feature = "alloc-stats")]
#[repr(C)]
#[derive(Default)]
pub struct RawStats {
    pub allocations: c_ulonglong,
    pub deallocations: c_ulonglong,
    pub bytes_allocated: c_ulonglong,
    pub bytes_deallocated: c_ulonglong,
    pub peak_memory: c_ulonglong,
    pub current_memory: c_ulonglong,
}

#[cfg(feature = "alloc-stats")]
extern "C" {
    pub fn bop_stats_allocator_create() -> *mut StatsHandle;
    pub fn bop_stats_allocator_destroy(a: *mut StatsHandle);
    pub fn bop_stats_allocator_alloc(
        a: *mut StatsHandle,
        alignment: usize,
        size: usize,
    ) -> *mut c_void;
    pub fn bop_stats_allocator_zalloc(
        a: *mut StatsHandle,
        alignment: usize,
        size: usize,
    ) -> *mut c_void;
    pub fn bop_stats_allocator_dealloc(
        a: *mut StatsHandle,
        p: *mut c_void,
        alignment: usize,
        size: usize,
    );
    pub fn bop_stats_allocator_realloc(
        a: *mut StatsHandle,
        p: *mut c_void,
        alignment: usize,
        old_size: usize,
        new_size: usize,
    ) -> *mut c_void;
    pub fn bop_stats_allocator_get(a: *const StatsHandle, out: *mut RawStats);
    pub fn bop_stats_allocator_reset(a: *mut StatsHandle);
}
