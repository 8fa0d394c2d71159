"""Shared helpers for bench/compare and bench/micro (Python 3 standard library only).

Finds or builds the benchmark binaries, finds (and if needed installs) the
peer allocators, checks that LD_PRELOAD really replaces malloc, and runs one
program with its peak RSS taken from wait4's rusage.
"""
from __future__ import annotations

import glob
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
RAW_DIR = os.path.join(RESULTS_DIR, "raw")

# The project's own build (the release preset) and the bench-only fallback.
PROJECT_BUILD = os.path.join(ROOT, "build", "release")
STANDALONE_BUILD = os.path.join(ROOT, "build", "bench")
BOP_LIB_DEFAULT = os.path.join(PROJECT_BUILD, "libbop.so")

ALL_ALLOCATORS = ["glibc", "jemalloc", "tcmalloc", "mimalloc", "bop"]

# Debian packages of the peers: (package, file name pattern of the library)
PEER_PACKAGES = {
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2*"),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    log(f"WARNING: {msg}")


# ---------------------------------------------------------------- building --


def _run_logged(cmd: list[str], logf) -> int:
    logf.write(f"\n$ {' '.join(cmd)}\n")
    logf.flush()
    return subprocess.call(cmd, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT)


def build(targets: list[str], want_bop: bool, jobs: int = 2) -> tuple[str, bool]:
    """Builds `targets` (bench targets) and, if want_bop, bop_shared.

    Tries the project's release preset first; if the project does not
    configure or the bench targets do not build there, builds bench/ on its
    own in build/bench. Returns (bin_dir, bop_built_now).
    """
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    log_path = os.path.join(ROOT, "build", "bench-build.log")
    with open(log_path, "w") as logf:
        bin_dir = None
        bop_ok = False
        if _run_logged(["cmake", "--preset", "release"], logf) == 0:
            if _run_logged(["cmake", "--build", "--preset", "release", f"-j{jobs}", "--target", *targets], logf) == 0:
                bin_dir = os.path.join(PROJECT_BUILD, "bench", "bin")
            else:
                warn(f"bench targets did not build in the project build (see {log_path})")
            if want_bop:
                if _run_logged(["cmake", "--build", "--preset", "release", f"-j{jobs}", "--target", "bop_shared"],
                               logf) == 0:
                    bop_ok = True
                else:
                    warn(f"libbop.so did not build (see {log_path}); bop will be skipped")
        else:
            warn(f"the project does not configure (see {log_path}); building bench/ on its own")
        if bin_dir is None:
            if (_run_logged(["cmake", "-S", BENCH_DIR, "-B", STANDALONE_BUILD, "-DCMAKE_BUILD_TYPE=Release"], logf) != 0
                    or _run_logged(["cmake", "--build", STANDALONE_BUILD, f"-j{jobs}", "--target", *targets],
                                   logf) != 0):
                log(open(log_path).read()[-4000:])
                sys.exit("bench programs failed to build")
            bin_dir = os.path.join(STANDALONE_BUILD, "bin")
    return bin_dir, bop_ok


def find_bin_dir() -> str:
    """The most recently built bench bin directory (for --no-build)."""
    cands = [os.path.join(PROJECT_BUILD, "bench", "bin"), os.path.join(STANDALONE_BUILD, "bin")]
    cands = [c for c in cands if os.path.isdir(c)]
    if not cands:
        sys.exit("no bench build found; run without --no-build")
    return max(cands, key=os.path.getmtime)


# ------------------------------------------------------------- allocators --


def _dpkg_files(pkg: str) -> list[str]:
    try:
        out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return out.split()


def _find_peer(name: str) -> str | None:
    pkg, pattern = PEER_PACKAGES[name]
    rx = re.compile("^" + pattern.replace(".", r"\.").replace("*", ".*") + "$")
    hits = [f for f in _dpkg_files(pkg) if rx.match(os.path.basename(f)) and os.path.exists(f)]
    hits += glob.glob(f"/usr/lib/x86_64-linux-gnu/{pattern}") + glob.glob(f"/usr/lib/{pattern}")
    hits = [h for h in hits if os.path.isfile(h)]
    return sorted(hits, key=len)[0] if hits else None


def apt_install(pkgs: list[str]) -> bool:
    """apt-get install; apt-get update only if the first try fails."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        warn(f"cannot install {' '.join(pkgs)} (not root or no apt-get)")
        return False
    cmd = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *pkgs]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"installing {' '.join(pkgs)} ...")
    if subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL) == 0:
        return True
    subprocess.call(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=600"], env=env, stdout=subprocess.DEVNULL)
    return subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL) == 0


def package_version(pkg: str) -> str:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    except FileNotFoundError:
        return "?"


@dataclass
class Allocator:
    name: str
    lib: str | None  # None: the C library's malloc, no preload
    version: str = ""

    def env(self, var: str = "LD_PRELOAD") -> dict[str, str]:
        """The environment to run a program under this allocator; var is
        BENCH_PRELOAD when bench/spawn starts the program."""
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("BENCH_PRELOAD", None)
        if self.lib:
            env[var] = self.lib
        return env


def resolve_allocators(names: list[str], bop_lib: str, bin_dir: str) -> list[Allocator]:
    """Finds each requested allocator, installing missing peers; drops (with a
    warning) any that cannot be found or whose malloc is not really used."""
    missing = [n for n in names if n in PEER_PACKAGES and _find_peer(n) is None]
    if missing:
        apt_install([PEER_PACKAGES[n][0] for n in missing])
    out = []
    for n in names:
        if n == "glibc":
            a = Allocator(n, None, package_version("libc6"))
        elif n == "bop":
            if not os.path.isfile(bop_lib):
                warn(f"{bop_lib} does not exist yet; skipping bop")
                continue
            st = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(bop_lib)))
            a = Allocator(n, os.path.abspath(bop_lib), f"{os.path.relpath(bop_lib, ROOT)} built {st}")
        elif n in PEER_PACKAGES:
            lib = _find_peer(n)
            if lib is None:
                warn(f"{n} is not installed and could not be installed; skipping it")
                continue
            a = Allocator(n, lib, package_version(PEER_PACKAGES[n][0]))
        elif os.path.isfile(n):  # any other allocator library given by path
            a = Allocator(os.path.basename(n).split(".so")[0], os.path.abspath(n), "")
        else:
            warn(f"unknown allocator {n!r}; skipping it")
            continue
        problem = check_preload(a, bin_dir)
        if problem:
            warn(f"{a.name}: {problem}; skipping it")
            continue
        out.append(a)
    return out


def check_preload(a: Allocator, bin_dir: str) -> str | None:
    """None if the process's malloc/free come from the allocator's library."""
    prog = os.path.join(bin_dir, "whichmalloc")
    if not os.path.exists(prog):
        return None
    r = subprocess.run([prog], env=a.env(), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return f"a trivial program fails under it (exit {r.returncode}): {r.stderr.strip()[:200]}"
    owners = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
    want = os.path.realpath(a.lib) if a.lib else None
    for fn in ("malloc", "free", "realloc", "calloc"):
        got = owners.get(fn, "?")
        if want is None:
            if "libc.so" not in got:
                return f"{fn} comes from {got}, not the C library"
        elif os.path.realpath(got) != want:
            return f"{fn} comes from {got}, not {a.lib} (LD_PRELOAD did not replace it)"
    return None


# ----------------------------------------------------------------- running --

KV_RE = re.compile(r"(\w+)=(\S+)")


@dataclass
class RunResult:
    ok: bool
    wall_s: float
    maxrss_kb: int
    cpu_s: float = 0.0
    values: dict[str, str] = field(default_factory=dict)
    error: str = ""
    stderr_tail: str = ""


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit code {os.WEXITSTATUS(status)}"


def run_program(argv: list[str], env: dict[str, str], timeout: float, spawn: str | None = None) -> RunResult:
    """Runs argv to completion. With `spawn` (the bench/spawn launcher; env
    then carries BENCH_PRELOAD instead of LD_PRELOAD), peak RSS and the wait
    status come from the launcher's wait4; otherwise from our own wait4, whose
    ru_maxrss is floored at this Python process's size."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="bench-spawn-", suffix=".txt") as res_file:
        cmd = [spawn, res_file.name, *argv] if spawn else argv
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        maxrss = int(ru.ru_maxrss)
        cpu = ru.ru_utime + ru.ru_stime
        if spawn and status == 0 and not timed_out.is_set():
            sv = dict(KV_RE.findall(open(res_file.name).read()))
            status, maxrss, wall = int(sv["status"]), int(sv["maxrss_kb"]), float(sv["wall_s"])
            cpu = float(sv.get("cpu_s", cpu))
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    values = dict(KV_RE.findall(stdout))
    res = RunResult(ok=True, wall_s=wall, maxrss_kb=maxrss, cpu_s=cpu, values=values,
                    stderr_tail=stderr.strip()[-600:])
    if timed_out.is_set():
        res.ok, res.error = False, f"timed out after {timeout:.0f} s"
    elif status != 0:
        res.ok, res.error = False, describe_status(status)
    elif "time_s" not in values:
        res.ok, res.error = False, "printed no time_s"
    if not res.ok and res.stderr_tail:
        res.error += ": " + res.stderr_tail.splitlines()[-1][:200]
    return res


# -------------------------------------------------------------- statistics --


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def machine_summary() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "include", "bench"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        return "?"
    return (rev or "no commit") + (" + uncommitted changes" if dirty else "")


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}" if x < 1 else f"{x:.2f}"
