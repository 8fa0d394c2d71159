#include "stats/leak_sampler.hpp"

#include <dlfcn.h>
#include <execinfo.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>

#include "core/alloc.hpp"
#include "core/options.hpp"
#include "core/process.hpp"
#include "core/purger.hpp"
#include "platform/os.hpp"
#include "platform/spin_lock.hpp"
#include "stats/stack_walk.hpp"

namespace bop::stats {
namespace {

constexpr int kMaxFrames = kLeakFrames;
constexpr std::size_t kTableSize = std::size_t{1} << 16;  // live samples kept at most

using Sample = LeakSample;
const void* const kTombstone = reinterpret_cast<const void*>(1);

// The table of live samples: open addressing over the blocks' addresses,
// mapped from the OS on first use, written under g_lock.  Frees look into
// it without the lock (see in_table): a slot's key is read and written
// atomically, written last when a slot fills, and a rebuild moves the
// entries to the other of two tables (never unmapped, so a reader that
// raced with it reads stale but mapped memory) inside a bump of
// g_generation, which readers check.  Probes read only the keys: 8 per
// cache line.
struct Table {
  const void* keys[kTableSize];       // nullptr: empty; kTombstone: deleted; else a block
  std::uint32_t samples[kTableSize];  // the slot's sample: an index in g_pool
};
// The samples themselves (216 bytes each) sit in a pool, handed out in
// order and then reused, so the memory a process touches (and faults in)
// follows its live samples, not the span of a hashed table: a table of
// samples touched a fresh OS page at nearly every sample.  At most half the
// table is ever in use (insert), so the pool has that many.
constexpr std::uint32_t kPoolSize = kTableSize / 2;
constexpr std::uint32_t kNoSample = UINT32_MAX;
struct Pool {
  Sample samples[kPoolSize];
  std::uint32_t next_free[kPoolSize];  // the free list's links
};
SpinLock g_lock;
Table* g_table = nullptr;
Table* g_spare = nullptr;  // the other table, for the next rebuild
std::atomic<Table*> g_published{nullptr};
Pool* g_pool = nullptr;
std::uint32_t g_pool_used = 0;  // samples handed out in order so far
std::uint32_t g_pool_free = kNoSample;

Table* map_table() {
  return static_cast<Table*>(os::map_aligned(sizeof(Table), os::kPageSize));
}
std::atomic<std::uint64_t> g_generation{0};  // odd while a rebuild runs
std::size_t g_live = 0;
std::size_t g_tombstones = 0;

const void* load_key(const void* const& key) {
  return __atomic_load_n(&key, __ATOMIC_ACQUIRE);
}
// Slot i of `table` holds `block` (written last: a reader that sees the key
// sees the slot).
void set_key(Table* table, std::size_t i, const void* block) {
  __atomic_store_n(&table->keys[i], block, __ATOMIC_RELEASE);
}

// A free pool entry (kNoSample: none; cannot happen while insert keeps the
// table at most half full).
std::uint32_t pool_take() {
  if (g_pool_free != kNoSample) {
    std::uint32_t i = g_pool_free;
    g_pool_free = g_pool->next_free[i];
    return i;
  }
  return g_pool_used < kPoolSize ? g_pool_used++ : kNoSample;
}
void pool_give(std::uint32_t i) {
  g_pool->next_free[i] = g_pool_free;
  g_pool_free = i;
}
Sample& sample_at(const Table* table, std::size_t slot) {
  return g_pool->samples[table->samples[slot]];
}
bool is_live(const void* key) {
  return key != nullptr && key != kTombstone;
}

// Per thread: a guard so the stack walk's own allocations are never sampled.
// (The countdown and its random source live in the thread's stats shard.)
constinit thread_local bool tl_sampling __attribute__((tls_model("initial-exec"))) = false;

std::size_t slot_of(const void* p) {
  std::uint64_t h = reinterpret_cast<std::uintptr_t>(p) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h >> 48) & (kTableSize - 1);
}

std::atomic<std::uint32_t>& sample_word(const void* p) {
  core::Segment* seg = core::segment_of(p);
  if (seg->kind == core::SegmentKind::kHuge) return seg->huge_sampled;
  return seg->page_of(p)->sampled;
}

static_assert(kTableSize / 2 <= kSampleCountMask, "the count never carries into the tags");
static_assert(core::kMediumPageShift - 3 <= 16, "a tag names one block of a page");

// Block p's tag (a huge block is alone in its mapping).
std::uint32_t tag_of(const void* p) {
  core::Segment* seg = core::segment_of(p);
  return seg->kind == core::SegmentKind::kHuge ? 0 : sample_tag(p, seg->page_shift);
}

// Under g_lock (the only writer), as p enters or leaves the table.  Adding
// or removing a tag is the same XOR, so the word stays exact either way.
void mark(const void* p, bool sampled) {
  std::atomic<std::uint32_t>& word = sample_word(p);
  std::uint32_t now = word.load(std::memory_order_relaxed);
  now = (sampled ? now + 1 : now - 1) ^ tag_of(p);
  word.store(now, std::memory_order_relaxed);
}

// Most frees: one load, no lock.
bool maybe_sampled(const void* p) {
  return may_be_sampled(sample_word(p).load(std::memory_order_relaxed), tag_of(p));
}

// Block p's slot in g_table, or kTableSize.
std::size_t find(const void* p) {
  const void* const* keys = g_table->keys;
  for (std::size_t i = slot_of(p), n = 0; n < kTableSize; i = (i + 1) & (kTableSize - 1), ++n) {
    if (keys[i] == p) return i;
    if (keys[i] == nullptr) return kTableSize;
  }
  return kTableSize;
}

// Files block's sample (pool entry `sample`) in g_table.
void put(const void* block, std::uint32_t sample) {
  for (std::size_t i = slot_of(block);; i = (i + 1) & (kTableSize - 1)) {
    const void* key = g_table->keys[i];
    if (!is_live(key)) {
      if (key == kTombstone) --g_tombstones;
      g_table->samples[i] = sample;
      set_key(g_table, i, block);
      ++g_live;
      return;
    }
  }
}

// Too many deleted slots make every miss a long probe: rebuild the table
// into the spare one.
void rebuild() {
  if (g_spare == nullptr) {
    g_spare = map_table();
    if (g_spare == nullptr) return;
  } else {
    for (std::size_t i = 0; i < kTableSize; ++i) set_key(g_spare, i, nullptr);
  }
  g_generation.fetch_add(1, std::memory_order_acq_rel);  // odd: readers retry
  Table* old = g_table;
  g_table = g_spare;
  g_spare = old;
  g_live = g_tombstones = 0;
  for (std::size_t i = 0; i < kTableSize; ++i)
    if (is_live(old->keys[i])) put(old->keys[i], old->samples[i]);
  g_published.store(g_table, std::memory_order_release);
  g_generation.fetch_add(1, std::memory_order_release);
}

// Is block p in the table?  Without the lock: one probe sequence, repeated if
// a rebuild ran meanwhile.  Exact for p (its own entry cannot change while
// its owner frees it: it was put there when p was allocated).
bool in_table(const void* p) {
  for (;;) {
    std::uint64_t generation = g_generation.load(std::memory_order_acquire);
    if (generation & 1) {
      __builtin_ia32_pause();
      continue;
    }
    const Table* table = g_published.load(std::memory_order_acquire);
    if (table == nullptr) return false;
    const void* const* keys = table->keys;
    bool found = false;
    for (std::size_t i = slot_of(p), n = 0; n < kTableSize; i = (i + 1) & (kTableSize - 1), ++n) {
      const void* block = load_key(keys[i]);
      if (block == p) found = true;
      if (block == p || block == nullptr) break;
    }
    // The key loads are acquire loads (load_key): the generation load below
    // cannot move above them, so no standalone fence (which ThreadSanitizer
    // cannot model) is needed.
    if (g_generation.load(std::memory_order_relaxed) == generation) return found;
  }
}

// Slot i of g_table (a live one) is deleted and its sample freed.
void erase(std::size_t i) {
  pool_give(g_table->samples[i]);
  set_key(g_table, i, kTombstone);
  --g_live;
  if (++g_tombstones > kTableSize / 4) rebuild();
}

// BOP_PROFILE_ALL: every sample ever taken, summed per stack (a fixed
// table; stacks past its capacity are not counted).  Under g_lock.
struct Site {
  Sample stack;
  std::uint64_t count, bytes;
};
constexpr std::size_t kSiteTableSize = 4096;
Site* g_sites = nullptr;

std::uint64_t stack_hash(const Sample& s);
bool same_stack(const Sample& a, const Sample& b);

// What a sample stands for: a block of size s, max(s, N) bytes.
std::uint64_t estimate(std::size_t size) {
  std::uint64_t n = core::g_options.sample_bytes;
  return size > n ? size : n;
}

void count_site(const Sample& sample) {
  if (g_sites == nullptr) {
    g_sites = static_cast<Site*>(os::map_aligned(kSiteTableSize * sizeof(Site), os::kPageSize));
    if (g_sites == nullptr) return;
  }
  std::uint64_t h = stack_hash(sample);
  for (std::size_t i = h & (kSiteTableSize - 1), n = 0; n < kSiteTableSize / 2;
       i = (i + 1) & (kSiteTableSize - 1), ++n) {
    Site& site = g_sites[i];
    if (site.count == 0) site.stack = sample;
    if (site.count == 0 || same_stack(site.stack, sample)) {
      ++site.count;
      site.bytes += estimate(sample.size);
      return;
    }
  }
}

// `fresh`: a new sample (not one that moved with realloc).
void insert(const Sample& sample, bool fresh = true) {
  LockGuard guard(g_lock);
  if (fresh && core::g_options.profile_all) count_site(sample);
  if (g_table == nullptr) {
    g_pool = static_cast<Pool*>(os::map_aligned(sizeof(Pool), os::kPageSize));
    if (g_pool == nullptr) return;
    g_table = map_table();
    if (g_table == nullptr) return;
    g_published.store(g_table, std::memory_order_release);
  }
  if (g_live + g_tombstones >= kTableSize / 2) return;  // full enough: keep probing short
  std::uint32_t entry = pool_take();
  if (entry == kNoSample) return;
  g_pool->samples[entry] = sample;
  put(sample.block, entry);
  mark(sample.block, true);
}

std::uint64_t stack_hash(const Sample& s) {
  std::uint64_t h = static_cast<std::uint64_t>(s.depth);
  for (int i = 0; i < s.depth; ++i)
    h = (h ^ reinterpret_cast<std::uintptr_t>(s.frames[i])) * 0x100000001B3ull;
  return h;
}

// Is this frame part of the allocator itself (skipped at the top of a stack)?
// Only called while writing a report (under g_lock), so plain globals do.
Dl_info g_self;
bool g_self_known = false, g_self_looked_up = false;

bool is_allocator_frame(void* frame) {
  if (!g_self_looked_up) {
    g_self_known = dladdr(reinterpret_cast<void*>(&leak_record), &g_self) != 0;
    g_self_looked_up = true;
  }
  const Dl_info& self = g_self;
  bool self_known = g_self_known;
  Dl_info info;
  if (dladdr(frame, &info) == 0) return false;
  if (self_known && info.dli_fbase == self.dli_fbase && info.dli_sname == nullptr) return true;
  const char* name = info.dli_sname;
  if (name == nullptr) return false;
  static const char* const kEntryPoints[] = {
      "malloc", "calloc",  "realloc",        "reallocarray",  "_Znw",    "_Zna",
      "bop_",   "_ZN3bop", "posix_memalign", "aligned_alloc", "memalign"};
  for (const char* entry : kEntryPoints)
    if (std::strncmp(name, entry, std::strlen(entry)) == 0) return true;
  return false;
}

void write_frame(TextWriter& w, void* frame, bool json) {
  Dl_info info;
  bool known = dladdr(frame, &info) != 0;
  const char* name = known && info.dli_sname != nullptr ? info.dli_sname : "??";
  const char* module = known && info.dli_fname != nullptr ? info.dli_fname : "??";
  std::uintptr_t base = known ? reinterpret_cast<std::uintptr_t>(info.dli_fbase) : 0;
  std::uintptr_t module_offset = reinterpret_cast<std::uintptr_t>(frame) - base;
  if (json) {
    w.put("{\"function\":").put_json_string(name).put(",\"module\":").put_json_string(module);
    w.put(",\"offset\":").put_u64(module_offset).put("}");
  } else {
    w.put("      ").put(name);
    if (known && info.dli_saddr != nullptr)
      w.put("+").put_hex(reinterpret_cast<std::uintptr_t>(frame) -
                         reinterpret_cast<std::uintptr_t>(info.dli_saddr));
    w.put(" (").put(module).put("+").put_hex(module_offset).put(")\n");
  }
}

bool same_stack(const Sample& a, const Sample& b) {
  return a.depth == b.depth &&
         std::memcmp(a.frames, b.frames, sizeof(void*) * static_cast<std::size_t>(a.depth)) == 0;
}

// Warm the unwinder up at start-up (glibc loads it on first use, which
// allocates, and loading a library from inside any malloc is not safe);
// the guard keeps that allocation from being sampled.  Not when sampling is
// off in practice (a sample per TiB or rarer: the bench's "counters only"):
// the load costs as much as a small program's whole run.  Such a process
// would load it at its first sample.
__attribute__((constructor)) void warm_up_unwinder() {
  core::process_init();  // the environment (a no-op once read)
  constexpr std::uint64_t kSamplingOff = std::uint64_t{1} << 40;
  if (core::g_options.stats_mode == core::StatsMode::kOff ||
      core::g_options.sample_bytes >= kSamplingOff)
    return;
  tl_sampling = true;
  void* frames[2];
  backtrace(frames, 2);
  tl_sampling = false;
}

}  // namespace

// Uniform in [N/2, 3N/2), so sampling is not in phase with any allocation
// pattern; a block of size s is sampled with probability ~ s/N.
std::int64_t leak_next_gap(std::uint64_t& rng) noexcept {
  if (rng == 0) rng = os::random_u64() | 1;
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  std::uint64_t n = core::g_options.sample_bytes;
  return static_cast<std::int64_t>(n / 2 + rng % (n == 0 ? 1 : n));
}

void leak_record(const void* p, std::size_t size) noexcept {
  if (tl_sampling || core::tl_starting_purger) return;
  Sample sample;
  sample.block = p;
  sample.size = size;
  tl_sampling = true;
  sample.depth = capture_stack(sample.frames, kMaxFrames);
  tl_sampling = false;
  insert(sample);
}

void leak_sampler_on_free(const void* p) noexcept {
  // The page's word first (one load), then the table without the lock: only
  // frees on a page that holds two or more samples get that far.
  if (!maybe_sampled(p) || !in_table(p)) return;
  LockGuard guard(g_lock);
  if (g_table == nullptr) return;
  if (std::size_t i = find(p); i != kTableSize) {
    erase(i);
    mark(p, false);
  }
}

bool leak_sampler_take(const void* p, LeakSample& out) noexcept {
  if (!maybe_sampled(p)) return false;  // most blocks: one load
  LockGuard guard(g_lock);
  std::size_t i = g_table == nullptr ? kTableSize : find(p);
  if (i == kTableSize) return false;
  out = sample_at(g_table, i);
  erase(i);
  mark(p, false);
  return true;
}

void leak_sampler_put_back(LeakSample& sample, const void* block) noexcept {
  sample.block = block;
  sample.size = core::usable_size(block);
  insert(sample, /*fresh=*/false);
}

namespace {

struct Group {
  std::uint64_t hash;
  const Sample* sample;
};

// Samples of one stack: a live-sample group or an all-samples site.
struct Run {
  const Sample* sample;  // any sample with this stack
  std::uint64_t count;
  std::uint64_t bytes;  // estimated: a block of size s stands for max(s, N) bytes
};

// Live samples grouped by stack, biggest first, in memory mapped from the
// OS for the duration of a report.  Built under g_lock.
class LiveRuns {
 public:
  LiveRuns() {
    std::size_t live = g_table == nullptr ? 0 : g_live;
    if (live == 0) return;
    mapped_ = live * (sizeof(Group) + sizeof(Run));
    groups_ = static_cast<Group*>(os::map_aligned(mapped_, os::kPageSize));
    if (groups_ == nullptr) return;
    runs_ = reinterpret_cast<Run*>(groups_ + live);
    std::size_t n = 0;
    for (std::size_t i = 0; i < kTableSize && n < live; ++i)
      if (is_live(g_table->keys[i]))
        groups_[n++] = {stack_hash(sample_at(g_table, i)), &sample_at(g_table, i)};
    // Sort by stack so equal stacks are adjacent (std::sort never allocates).
    std::sort(groups_, groups_ + n, [](const Group& a, const Group& b) { return a.hash < b.hash; });
    for (std::size_t i = 0; i < n;) {
      Run run = {groups_[i].sample, 0, 0};
      std::size_t j = i;
      for (; j < n && groups_[j].hash == groups_[i].hash &&
             same_stack(*groups_[j].sample, *run.sample);
           ++j) {
        ++run.count;
        run.bytes += estimate(groups_[j].sample->size);
      }
      runs_[count_++] = run;
      i = j;
    }
    std::sort(runs_, runs_ + count_, [](const Run& a, const Run& b) { return a.bytes > b.bytes; });
  }
  ~LiveRuns() {
    if (groups_ != nullptr) os::unmap(groups_, mapped_);
  }
  LiveRuns(const LiveRuns&) = delete;
  LiveRuns& operator=(const LiveRuns&) = delete;

  std::size_t count() const { return count_; }
  const Run& operator[](std::size_t i) const { return runs_[i]; }

 private:
  Group* groups_ = nullptr;
  Run* runs_ = nullptr;
  std::size_t count_ = 0, mapped_ = 0;
};

// Frames of a stack below the allocator's own (the first one shown).
int first_shown(const Sample& s) {
  int skip = 0;
  while (skip < s.depth - 1 && is_allocator_frame(s.frames[skip])) ++skip;
  return skip;
}

void write_group(TextWriter& w, bool json, bool first, const Run& run) {
  const Sample& s = *run.sample;
  if (json) {
    w.put(first ? "" : ",").put("{\"samples\":").put_u64(run.count);
    w.put(",\"estimated_bytes\":").put_u64(run.bytes).put(",\"frames\":[");
  } else {
    w.put("    ").put_u64(run.count).put(" sample(s), about ").put_bytes(run.bytes);
    w.put(", allocated at:\n");
  }
  for (int f = first_shown(s); f < s.depth; ++f) {
    if (json && f != first_shown(s)) w.put(",");
    write_frame(w, s.frames[f], json);
  }
  if (json) w.put("]}");
}

// A frame for the collapsed-stack format: its function, else module+offset
// (no spaces or semicolons: they separate frames and the count).
void write_collapsed_frame(TextWriter& w, void* frame) {
  Dl_info info;
  if (dladdr(frame, &info) != 0 && info.dli_sname != nullptr) {
    w.put(info.dli_sname);
    return;
  }
  const char* module = "??";
  std::uintptr_t base = 0;
  if (dladdr(frame, &info) != 0 && info.dli_fname != nullptr) {
    module = info.dli_fname;
    for (const char* c = module; *c != '\0'; ++c)
      if (*c == '/') module = c + 1;
    base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  }
  for (const char* c = module; *c != '\0'; ++c) w.put_char(*c == ' ' || *c == ';' ? '_' : *c);
  w.put("+").put_hex(reinterpret_cast<std::uintptr_t>(frame) - base);
}

void write_collapsed(TextWriter& w, const Run& run) {
  const Sample& s = *run.sample;
  int top = first_shown(s);
  for (int f = s.depth - 1; f >= top; --f) {  // outermost frame first
    write_collapsed_frame(w, s.frames[f]);
    if (f != top) w.put_char(';');
  }
  w.put_char(' ').put_u64(run.bytes).put_char('\n');
}

}  // namespace

void leak_sampler_fork(ForkPhase phase) noexcept {
  g_lock.on_fork(phase);
}

void write_leaks(TextWriter& w, bool json) noexcept {
  LockGuard guard(g_lock);
  std::uint64_t n = core::g_options.sample_bytes;
  if (json) w.put("{\"sample_bytes\":").put_u64(n).put(",\"stacks\":[");
  LiveRuns runs;
  if (runs.count() == 0) {
    w.put(json ? "]}" : "  leak samples: none live\n");
    return;
  }
  if (!json) {
    w.put("  live allocations, sampled (1 per ~").put_bytes(n).put("), by allocating stack:\n");
  }
  // The ten largest stacks.
  for (std::size_t i = 0; i < runs.count() && i < 10; ++i) write_group(w, json, i == 0, runs[i]);
  if (json) w.put("]}");
}

void write_profile(TextWriter& w) noexcept {
  LockGuard guard(g_lock);
  if (core::g_options.profile_all) {
    if (g_sites == nullptr) return;
    for (std::size_t i = 0; i < kSiteTableSize; ++i)
      if (g_sites[i].count != 0)
        write_collapsed(w, Run{&g_sites[i].stack, g_sites[i].count, g_sites[i].bytes});
    return;
  }
  LiveRuns runs;
  for (std::size_t i = 0; i < runs.count(); ++i) write_collapsed(w, runs[i]);
}

}  // namespace bop::stats
