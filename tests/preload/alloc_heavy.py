# Allocation-heavy Python workload, run under LD_PRELOAD=libbop.so with
# PYTHONMALLOC=malloc (so every Python object is a malloc block).  It first
# proves from the inside that bop is the process's allocator, then churns
# dicts, lists, strings and bytearrays in several threads and a forked child.
# Exit codes: 0 = ok, 2 = bop not loaded, 1 = a check failed.
import ctypes
import os
import sys
import threading

proc = ctypes.CDLL(None)

# 1. bop's own API is resolvable: libbop.so is loaded.
try:
    bop_usable = proc.bop_malloc_usable_size
except AttributeError:
    print("bop_malloc_usable_size not found: libbop.so is not loaded", file=sys.stderr)
    sys.exit(2)
bop_usable.restype = ctypes.c_size_t
bop_usable.argtypes = [ctypes.c_void_p]
malloc = proc.malloc
malloc.restype = ctypes.c_void_p
malloc.argtypes = [ctypes.c_size_t]
free = proc.free
free.argtypes = [ctypes.c_void_p]
malloc_usable_size = proc.malloc_usable_size
malloc_usable_size.restype = ctypes.c_size_t
malloc_usable_size.argtypes = [ctypes.c_void_p]


def fail(msg):
    print("alloc_heavy.py: " + msg, file=sys.stderr)
    sys.exit(1)


# 2. The process's malloc is the one inside libbop.so (read /proc/self/maps).
def mapping_of(addr):
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= addr < hi:
                return fields[5] if len(fields) > 5 else "(anonymous)"
    return "(unmapped)"


for name in ("malloc", "free", "realloc", "calloc"):
    addr = ctypes.cast(getattr(proc, name), ctypes.c_void_p).value
    where = mapping_of(addr)
    if "libbop" not in os.path.basename(where):
        fail("%s is at %#x in %s, not in libbop.so" % (name, addr, where))

# 3. malloc's blocks are bop blocks.
for n in (1, 100, 1000, 100000, 5 << 20):
    p = malloc(n)
    if not p or bop_usable(p) < n or bop_usable(p) != malloc_usable_size(p):
        fail("malloc(%d) is not a bop block" % n)
    free(p)

# 4. Python's own objects are bop blocks (bytes objects start their block).
for n in (10, 1000, 300000, 8 << 20):
    b = bytes(n)
    if bop_usable(id(b)) < n:
        fail("bytes(%d) at %#x is not in a bop block" % (n, id(b)))


# 5. The workload.
def churn(seed, rounds):
    total = 0
    for r in range(rounds):
        d = {}
        for i in range(15000):
            key = ("%d-%d-" % (seed, i)) * (i % 7 + 1)
            d[key] = [i] * (i % 13) + [key]
        odd = [kv for kv in d.items() if len(kv[1]) % 2]
        joined = "".join(k for k, _ in odd[:3000])
        built = ""
        for k, _ in odd[:3000]:
            built += k
        if joined != built:
            fail("string built two ways differs")
        buf = bytearray()
        for i in range(20000):
            buf += bytes([i % 251]) * (i % 50)
        if sum(buf[:1000]) != sum(bytes(buf)[:1000]):
            fail("bytearray copy differs")
        total += len(joined) + len(odd) + len(buf)
        del d, odd
    return total


results = {}


def worker(seed):
    results[seed] = churn(seed, 3)


threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if len(results) != 4:
    fail("a worker thread died")
# Same seed, same work: results must be reproducible.
if churn(0, 3) != results[0]:
    fail("repeated work gave a different result")

pid = os.fork()
if pid == 0:
    try:
        kept = bytes(50000)
        ok = churn(7, 1) > 0 and bop_usable(id(kept)) >= 50000
    except BaseException:
        import traceback

        traceback.print_exc()
        ok = False
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
    fail("forked child failed: status %d" % status)

print("bop-python-ok")
