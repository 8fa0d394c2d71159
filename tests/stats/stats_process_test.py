#!/usr/bin/env python3
"""Child-process tests of bop's statistics, run by ctest (one test per case).

ExampleTest: the stats_allocator example exits 0 and prints its checks.
ReportTest: stats_probe (linked with bop::override) under BOP_STATS=1/json:
  the exit report is there, the JSON parses and its numbers add up, the leak
  report names the leaking function, and with BOP_STATS unset nothing is
  counted or printed; the C API (bop_stats_get/reset/print) checks itself.
PreloadTest: the same report for a plain program under LD_PRELOAD=libbop.so.

usage: stats_process_test.py --probe P --plain-probe P --libbop SO
                             --example EXE [unittest names...]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None  # paths from the command line
LEAK_BYTES = 2000 * 1000  # what leak_from_known_function leaks
TEXT_HEADER = "bop: memory report"


def run(cmd, stats=None, preload=False, extra_env=None):
    """Runs cmd with BOP_STATS=stats (unset if None); returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOP_") and k != "LD_PRELOAD"}
    if stats is not None:
        env["BOP_STATS"] = stats
    if preload:
        env["LD_PRELOAD"] = ARGS.libbop
    env.update(extra_env or {})
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=20)


def json_report(stderr):
    """The one JSON object of the report on stderr (other lines ignored)."""
    lines = [line for line in stderr.splitlines() if line.startswith('{"bop_stats"')]
    if len(lines) != 1:
        raise AssertionError("expected one JSON report line in stderr:\n" + stderr)
    return json.loads(lines[0])["bop_stats"]


def usable(stdout, which="1000"):
    """Block size the probe reported for its 1000-byte or its early blocks."""
    match = re.search(r"usable_%s=(\d+)" % which, stdout)
    if not match:
        raise AssertionError("probe printed no usable size:\n" + stdout)
    return int(match.group(1))


def human_bytes(number, unit):
    """Bytes from the text report's "1.5 KiB" form."""
    return float(number) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]


def first_frames(stats):
    """Function name of the first frame shown for each leak stack."""
    return [stack["frames"][0]["function"] for stack in stats["leaks"]["stacks"] if stack["frames"]]



def class_of(classes, usable_size):
    """The histogram's size class holding blocks of usable_size bytes: the
    smallest at or above it (checked builds keep a canary past the usable
    size, so their blocks are of a larger class)."""
    sizes = [c for c in classes if isinstance(c, (int, float)) and c >= usable_size]
    return min(sizes) if sizes else usable_size

class ExampleTest(unittest.TestCase):
    """examples/stats_allocator.cpp: exit code 0 and the expected lines."""

    def test_example(self):
        if not ARGS.example:
            self.skipTest("examples are not built (BOP_BUILD_EXAMPLES=OFF)")
        result = run([ARGS.example])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        out = result.stdout
        self.assertIn("Memory leaks detected: 10 allocations (80 bytes)", out)
        self.assertRegex(out, r"10 MB vector: current \d+ bytes, peak so far \d+ bytes")
        self.assertRegex(out, r"Peak memory: \d+ bytes")
        self.assertIn("All checks passed.", out)
        self.assertNotIn("FAILED", out)
        self.assertEqual(out.count("[ok]"), 7, out)


class ReportMixin:
    """Report checks shared by the linked probe and the preloaded one."""

    probe = None  # set by subclasses
    preload = False

    def check_json_report(self):
        result = run([self.probe(), "churn"], stats="json", preload=self.preload)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn(TEXT_HEADER, result.stderr)
        stats = json_report(result.stderr)
        block = usable(result.stdout)
        # churn: 2001 x malloc(1000) and 3 x 1 MiB, all freed, plus whatever
        # the C runtime allocates.
        self.assertGreaterEqual(stats["allocations"], 2004)
        self.assertGreaterEqual(stats["bytes_allocated"], 2001 * block + 3 * (1 << 20))
        self.assertLessEqual(stats["deallocations"], stats["allocations"])
        self.assertGreaterEqual(stats["deallocations"], 2004)
        self.assertLessEqual(stats["bytes_deallocated"], stats["bytes_allocated"])
        self.assertEqual(stats["current_memory"], stats["bytes_allocated"] - stats["bytes_deallocated"])
        self.assertEqual(stats["outstanding_allocations"], stats["allocations"] - stats["deallocations"])
        # The peak may trail the true one by one publication (256 KiB).
        self.assertGreaterEqual(stats["peak_memory"], 2000 * block - 256 * 1024)
        self.assertGreaterEqual(stats["peak_memory"], stats["current_memory"])
        self.assertEqual(stats["average_allocation_size"], stats["bytes_allocated"] // stats["allocations"])
        self.assertGreater(stats["mapped_bytes"], 0)
        self.assertGreater(stats["resident_bytes"], 0)
        for key in ("allocations_per_second", "elapsed_ms"):
            self.assertIsInstance(stats[key], int)
        # histogram: the 1000-byte class and the huge blocks are there
        classes = {entry["size"]: entry["allocations"] for entry in stats["size_classes"]}
        self.assertTrue(classes, "size_classes is empty")
        self.assertGreaterEqual(classes.get(class_of(classes, block), 0), 2001, classes)
        self.assertGreaterEqual(classes.get("huge", 0), 3, classes)
        # the 5 blocks a static constructor allocated before main are counted
        self.assertEqual(classes.get(class_of(classes, usable(result.stdout, "early")), 0), 5, classes)
        self.assertEqual(sum(classes.values()), stats["allocations"])
        self.assertIsInstance(stats["leaks"]["stacks"], list)
        self.assertEqual(stats["leaks"]["sample_bytes"], 512 * 1024)

    def check_leak_names_function(self, stats_mode):
        result = run([self.probe(), "leak"], stats=stats_mode, preload=self.preload)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        if stats_mode == "json":
            stats = json_report(result.stderr)
            self.assertGreaterEqual(stats["outstanding_allocations"], 2000)
            self.assertGreaterEqual(stats["current_memory"], LEAK_BYTES)
            stacks = [s for s in stats["leaks"]["stacks"]
                      if s["frames"] and s["frames"][0]["function"] == "leak_from_known_function"]
            self.assertEqual(len(stacks), 1, "leak stacks start at " + repr(first_frames(stats)))
            # about one sample per 512 KiB: the estimate is within a factor 4
            self.assertGreaterEqual(stacks[0]["samples"], 1)
            self.assertGreaterEqual(stacks[0]["estimated_bytes"], LEAK_BYTES // 4)
            self.assertLessEqual(stacks[0]["estimated_bytes"], LEAK_BYTES * 4)
            self.assertTrue(stacks[0]["frames"][0]["module"].endswith(os.path.basename(self.probe())))
        else:
            self.assertIn(TEXT_HEADER, result.stderr)
            self.assertRegex(result.stderr, r"\n\s+leak_from_known_function\+0x[0-9a-f]+ \(")


class ReportTest(ReportMixin, unittest.TestCase):
    """stats_probe, linked with bop::override."""

    def probe(self):
        return ARGS.probe

    def test_text_report(self):
        result = run([self.probe(), "churn"], stats="1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        err = result.stderr
        self.assertEqual(err.count(TEXT_HEADER), 1, err)
        values = {}
        for label in ("allocations", "deallocations", "outstanding", "allocations/second"):
            match = re.search(r"^  " + re.escape(label) + r" +(\d+)", err, re.MULTILINE)
            self.assertIsNotNone(match, label + " missing in:\n" + err)
            values[label] = int(match.group(1))
        # byte counts are in human units: "512 B", "1.5 KiB", "20.0 MiB"
        for label in ("bytes allocated", "bytes deallocated", "current memory", "peak memory",
                      "average size", "mapped by bop", "process resident"):
            match = re.search(r"^  " + re.escape(label) + r" +(\d+(?:\.\d)?) (B|KiB|MiB|GiB)$",
                              err, re.MULTILINE)
            self.assertIsNotNone(match, label + " missing in:\n" + err)
            values[label] = human_bytes(match.group(1), match.group(2))
            self.assertEqual(match.group(2) == "B", "." not in match.group(1), match.group(0))
        self.assertGreaterEqual(values["allocations"], 2004)
        self.assertLessEqual(values["deallocations"], values["allocations"])
        self.assertEqual(values["outstanding"], values["allocations"] - values["deallocations"])
        block = usable(result.stdout)
        # 2001 blocks of 1 KiB and 3 of 1 MiB went through: within rounding
        self.assertGreaterEqual(values["bytes allocated"], 0.95 * (2001 * block + 3 * (1 << 20)))
        # (the peak may trail the true one by one publication: 256 KiB)
        self.assertGreaterEqual(values["peak memory"], 0.95 * (2000 * block - 256 * 1024))
        self.assertIn("allocations by size class:", err)
        # rows in human units ("1.0 KiB", "1.2 KiB"); checked builds keep a
        # canary past the usable size, so their blocks are of a larger class
        rows = {human_bytes(m.group(1), m.group(2)): int(m.group(3))
                for m in re.finditer(r"^ +([\d.]+) (B|KiB|MiB) +(\d+) #+$", err, re.MULTILINE)}
        self.assertIn(class_of(rows, block), rows, "no histogram row for %d B" % block)
        self.assertGreaterEqual(rows[class_of(rows, block)], 2001)
        self.assertRegex(err, r"(?m)^ +huge +\d+ #*$")

    def test_json_report(self):
        self.check_json_report()

    def test_leak_names_function(self):
        self.check_leak_names_function("json")
        self.check_leak_names_function("1")

    def test_json_escapes_module_path(self):
        # A program path with a quote, a backslash and a tab is still valid JSON.
        with tempfile.TemporaryDirectory() as tmp:
            odd_dir = os.path.join(tmp, 'a"b\\c\td')
            os.mkdir(odd_dir)
            odd_probe = os.path.join(odd_dir, "probe")
            shutil.copy(self.probe(), odd_probe)
            result = run([odd_probe, "leak"], stats="json")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        stats = json_report(result.stderr)
        modules = [frame["module"] for stack in stats["leaks"]["stacks"] for frame in stack["frames"]]
        self.assertIn(odd_probe, modules)

    def test_freed_blocks_are_not_leaks(self):
        result = run([self.probe(), "noleak"], stats="json", extra_env={"BOP_SAMPLE_BYTES": "4096"})
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        stats = json_report(result.stderr)
        self.assertEqual(stats["leaks"]["sample_bytes"], 4096)
        # ~500 of its blocks were sampled, and all freed again.  (Only the
        # first frame counts: bop may start its purge thread from inside free,
        # and pthread_create's own allocation then has this function deeper
        # in its stack.)
        self.assertNotIn("free_again_from_known_function", first_frames(stats))
        self.assertGreaterEqual(stats["deallocations"], 2000)
        # the same program that keeps its blocks is sampled with this rate
        result = run([self.probe(), "leak"], stats="json", extra_env={"BOP_SAMPLE_BYTES": "4096"})
        stats = json_report(result.stderr)
        self.assertIn("leak_from_known_function", first_frames(stats))

    def test_page_sample_counts(self):
        # Every block sampled: pages that held many samples, freed down to
        # `keep` (stats_probe.cpp, PageSamples).  Exactly the live ones are
        # reported, however many samples their pages held before.
        for keep in (0, 1, 3):
            result = run([self.probe(), "pages", str(keep)], stats="json",
                         extra_env={"BOP_SAMPLE_BYTES": "16"})
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            stats = json_report(result.stderr)
            live = {}
            for stack in stats["leaks"]["stacks"]:
                if stack["frames"]:
                    name = stack["frames"][0]["function"]
                    live[name] = live.get(name, 0) + stack["samples"]
            self.assertEqual(live.get("keep_samples_on_pages", 0), keep, (keep, live))
            self.assertNotIn("refill_and_free_on_pages", live)

    def test_stats_off(self):
        for stats_mode in (None, "0"):
            result = run([self.probe(), "off"], stats=stats_mode)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("enabled=0 allocations=0 deallocations=0 bytes_allocated=0", result.stdout)
            self.assertNotIn("bop", result.stderr)
        result = run([self.probe(), "off"], stats="1")
        self.assertRegex(result.stdout, r"enabled=1 allocations=[1-9]")
        self.assertIn(TEXT_HEADER, result.stderr)

    def test_peak_bound(self):
        result = run([self.probe(), "peak"], stats="1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("FAIL", result.stdout)
        self.assertIn("two threads:", result.stdout)

    def test_c_api(self):
        with tempfile.TemporaryDirectory() as tmp:
            json_path, text_path = os.path.join(tmp, "r.json"), os.path.join(tmp, "r.txt")
            result = run([self.probe(), "capi", json_path, text_path], stats="1")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertNotIn("FAIL", result.stdout)
            with open(json_path) as f:
                stats = json.load(f)["bop_stats"]
            with open(text_path) as f:
                text = f.read()
        self.assertGreaterEqual(stats["allocations"], 100)
        self.assertGreaterEqual(stats["deallocations"], 100)
        self.assertLessEqual(stats["deallocations"], stats["allocations"])
        self.assertTrue(stats["size_classes"])
        self.assertTrue(text.startswith(TEXT_HEADER), text)
        # the JSON one was asked for, but the exit report is text (BOP_STATS=1)
        self.assertEqual(result.stderr.count(TEXT_HEADER), 1)


PROFILE_LINE = re.compile(r"^(\S+) (\d+)$")


def read_profile(path):
    """(frames root first, bytes) per line of a collapsed-stack profile."""
    with open(path) as f:
        lines = f.read().splitlines()
    rows = []
    for line in lines:
        match = PROFILE_LINE.match(line)
        if not match:
            raise AssertionError("not a collapsed-stack line: %r" % line)
        rows.append((match.group(1).split(";"), int(match.group(2))))
    return rows


class OutputTest(unittest.TestCase):
    """BOP_STATS_FILE, BOP_PROFILE and the BOP_STATS_INTERVAL_MS timeline."""

    def test_stats_file_with_pid(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = run([ARGS.probe, "churn"], stats="json",
                         extra_env={"BOP_STATS_FILE": os.path.join(tmp, "r.%p.json")})
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertNotIn("bop_stats", result.stderr)
            files = os.listdir(tmp)
            self.assertEqual(len(files), 1, files)
            self.assertRegex(files[0], r"^r\.\d+\.json$")
            with open(os.path.join(tmp, files[0])) as f:
                stats = json.load(f)["bop_stats"]
        self.assertGreaterEqual(stats["allocations"], 2004)
        self.assertNotIn("timeline", stats)  # no BOP_STATS_INTERVAL_MS: no timeline

    def test_text_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "report.txt")
            result = run([ARGS.probe, "churn"], stats="1", extra_env={"BOP_STATS_FILE": path})
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertNotIn(TEXT_HEADER, result.stderr)
            with open(path) as f:
                self.assertTrue(f.read().startswith(TEXT_HEADER))

    def test_unwritable_file_falls_back_to_stderr(self):
        result = run([ARGS.probe, "churn"], stats="1",
                     extra_env={"BOP_STATS_FILE": "/nonexistent-dir/report.txt"})
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("bop: cannot open BOP_STATS_FILE", result.stderr)
        self.assertEqual(result.stderr.count(TEXT_HEADER), 1)

    def test_one_file_per_process(self):
        # A shell that starts two probes: three processes, three whole reports.
        # (bash: dash leaves with _exit, which runs no exit handlers.)
        bash = shutil.which("bash")
        if bash is None:
            self.skipTest("no bash")
        with tempfile.TemporaryDirectory() as tmp:
            probe = ARGS.plain_probe
            result = run([bash, "-c", '"$0" churn & "$0" leak; wait', probe], stats="json",
                         preload=True, extra_env={"BOP_STATS_FILE": os.path.join(tmp, "%p.json")})
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            reports = {}
            for name in os.listdir(tmp):
                with open(os.path.join(tmp, name)) as f:
                    reports[name] = json.load(f)["bop_stats"]
        self.assertGreaterEqual(len(reports), 3, sorted(reports))
        leakers = [r for r in reports.values() if r["outstanding_allocations"] >= 2000]
        self.assertEqual(len(leakers), 1)

    def test_profile_of_live_samples(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = run([ARGS.probe, "leak"], stats="1",
                         extra_env={"BOP_PROFILE": os.path.join(tmp, "heap.%p.txt")})
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn(TEXT_HEADER, result.stderr)  # the report still goes to stderr
            (name,) = os.listdir(tmp)
            self.assertRegex(name, r"^heap\.\d+\.txt$")
            rows = read_profile(os.path.join(tmp, name))
        leaks = [(frames, n) for frames, n in rows if frames[-1] == "leak_from_known_function"]
        self.assertEqual(len(leaks), 1, rows)
        frames, n = leaks[0]
        self.assertIn("main", frames[:-1])  # outermost first: main calls the leaker
        self.assertGreaterEqual(n, LEAK_BYTES // 4)
        self.assertLessEqual(n, LEAK_BYTES * 4)

    def test_profile_all_samples(self):
        env = {"BOP_SAMPLE_BYTES": "4096"}
        with tempfile.TemporaryDirectory() as tmp:
            live, every = os.path.join(tmp, "live.txt"), os.path.join(tmp, "all.txt")
            result = run([ARGS.probe, "noleak"], stats="1", extra_env=dict(env, BOP_PROFILE=live))
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            result = run([ARGS.probe, "noleak"], stats="1",
                         extra_env=dict(env, BOP_PROFILE=every, BOP_PROFILE_ALL="1"))
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            live_rows, all_rows = read_profile(live), read_profile(every)
        name = "free_again_from_known_function"
        self.assertFalse([r for r in live_rows if r[0][-1] == name], live_rows)
        freed = [n for frames, n in all_rows if frames[-1] == name]
        self.assertEqual(len(freed), 1, all_rows)
        # 2000 x 1000-byte blocks, all freed: the estimate is within a factor 4
        self.assertGreaterEqual(freed[0], LEAK_BYTES // 4)
        self.assertLessEqual(freed[0], LEAK_BYTES * 4)

    def test_timeline(self):
        result = run([ARGS.probe, "grow"], stats="json", extra_env={"BOP_STATS_INTERVAL_MS": "10"})
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        stats = json_report(result.stderr)
        timeline = stats["timeline"]
        self.assertEqual(timeline["interval_ms"], 10)
        points = timeline["points"]
        # 0.23 s of run at 10 ms: a loaded machine may skip some, not most
        self.assertGreaterEqual(len(points), 5, points)
        for before, after in zip(points, points[1:]):
            self.assertLess(before["t_ms"], after["t_ms"])
            self.assertLessEqual(before["allocations"], after["allocations"])
            self.assertLessEqual(before["peak_memory"], after["peak_memory"])
        for p in points:
            self.assertLessEqual(p["current_memory"], p["peak_memory"])
            self.assertGreater(p["resident_bytes"], 0)
            self.assertIsInstance(p["allocations_per_second"], int)
        # it saw the 40 MB climb (20 x 20 x 100 KiB, written) and the fall back
        top = max(p["current_memory"] for p in points)
        self.assertGreaterEqual(top, 20 * 1000 * 1024)
        self.assertLess(points[-1]["current_memory"], top // 4)
        self.assertGreaterEqual(points[-1]["peak_memory"], top)
        self.assertGreaterEqual(max(p["resident_bytes"] for p in points), 20 * 1000 * 1024)


class PreloadTest(ReportMixin, unittest.TestCase):
    """stats_plain_probe (no bop inside) under LD_PRELOAD=libbop.so."""

    preload = True

    def probe(self):
        return ARGS.plain_probe

    def test_json_report(self):
        self.check_json_report()

    def test_leak_names_function(self):
        self.check_leak_names_function("json")
        self.check_leak_names_function("1")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for option in ("--probe", "--plain-probe", "--libbop", "--example"):
        parser.add_argument(option, required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v"] + rest)
