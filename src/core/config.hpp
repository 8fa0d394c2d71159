// Compile-time geometry of the allocator.  Every constant that shapes memory
// layout lives here so the invariants can be read in one place.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bop::core {

inline constexpr std::size_t KiB = 1024;
inline constexpr std::size_t MiB = 1024 * KiB;

// A segment is a 4 MiB, 4 MiB-aligned piece of address space owned by one
// thread heap.  Its header (Segment, with one Page record per page) sits at
// its start, so `(p - 1) & ~kSegmentMask` finds the header of any block p.
// (The -1 lets a huge block start exactly one segment after its header, which
// is how alignments >= 4 MiB are served.)
inline constexpr unsigned kSegmentShift = 22;
inline constexpr std::size_t kSegmentSize = std::size_t{1} << kSegmentShift;
inline constexpr std::uintptr_t kSegmentMask = kSegmentSize - 1;

// Segments come in kinds by page size; page 0 holds the segment header.
// Medium pages are small enough (512 KiB) that one live block pins little
// memory: free pages are what the purger can give back.
// kZeroSize: checked builds' region of inaccessible zero-size blocks (hardening.cpp).
enum class SegmentKind : std::uint8_t { kSmall = 0, kMedium = 1, kHuge = 2, kZeroSize = 3 };
inline constexpr unsigned kSegmentKinds = 2;      // kinds made of pages
inline constexpr unsigned kSmallPageShift = 16;   // 64 KiB pages, blocks <= 8 KiB
inline constexpr unsigned kMediumPageShift = 19;  // 512 KiB pages, blocks <= 512 KiB
inline constexpr std::size_t kSmallBlockMax = 8 * KiB;
inline constexpr std::size_t kLargeBlockMax = 512 * KiB;  // above: huge, one mapping each
inline constexpr std::size_t kMaxPagesPerSegment = kSegmentSize >> kSmallPageShift;  // 64

// Blocks are naturally aligned up to this (the smallest page size); larger
// alignments are served as huge blocks.
inline constexpr std::size_t kMaxNaturalAlign = std::size_t{1} << kSmallPageShift;

// Huge blocks: the header (a Segment record) takes two OS pages before the block.
inline constexpr std::size_t kHugeHeaderSize = 8192;

// Sizes up to kDirectMax find their page through one table load.
inline constexpr std::size_t kDirectMax = 1024;
inline constexpr std::size_t kDirectSlots = kDirectMax / 16 + 1;

// When a page's free list runs dry, at most this many bytes of fresh blocks
// are threaded onto it at once: touching memory lazily keeps RSS honest.
inline constexpr std::size_t kExtendBytes = 4 * KiB;

// Frees to another thread's heap are batched; one atomic exchange hands a
// whole batch over.
inline constexpr unsigned kRemoteSlots = 8;
inline constexpr unsigned kRemoteBatch = 64;

// Empty segments kept (purged) for reuse before they are unmapped.
inline constexpr unsigned kSegmentCacheMax = 16;
// Freed huge mappings kept for reuse.
inline constexpr unsigned kHugeCacheMax = 128;
// A cached mapping taken for a smaller request gives up its excess (moved
// off as a cached mapping of its own) when the excess is larger than
// the request itself and could hold a huge block (huge.cpp: split_threshold).
inline constexpr std::size_t kHugeSplitMin = kLargeBlockMax + kHugeHeaderSize;
inline constexpr std::size_t kHugeCacheBytesMax = 1024 * MiB;  // mapped bytes
// Mapped bytes the huge cache may always hold, on top of what live huge
// blocks gave up since their peak (huge.cpp, cache_cap).
inline constexpr std::size_t kHugeCacheFloor = 4 * MiB;
// A cached mapping grown for a larger request takes at most this many moves
// of other cached pages to fill its new part.
inline constexpr unsigned kHugeFillMoves = 4;
// Checked builds: bytes from a freed huge block's start made inaccessible
// while its mapping is cached (huge_free), so a use after free there faults.
// mprotect's cost grows with the resident pages it covers, so the whole
// block is not: protecting and reopening every cached mapping whole made
// w18_large_churn 5x the default build's time.
inline constexpr std::size_t kCheckedHugeGuard = 64 * KiB;

}  // namespace bop::core
