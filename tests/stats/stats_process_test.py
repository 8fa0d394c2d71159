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


def first_frames(stats):
    """Function name of the first frame shown for each leak stack."""
    return [stack["frames"][0]["function"] for stack in stats["leaks"]["stacks"] if stack["frames"]]



def class_of(classes, usable_size):
    """The histogram's size class holding blocks of usable_size bytes: the
    smallest at or above it (checked builds keep a canary past the usable
    size, so their blocks are of a larger class)."""
    sizes = [c for c in classes if isinstance(c, int) and c >= usable_size]
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
        self.assertGreaterEqual(stats["peak_memory"], 2000 * block)
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
        for label in ("allocations", "deallocations", "outstanding", "bytes allocated",
                      "bytes deallocated", "current memory", "peak memory", "average size",
                      "allocations/second", "mapped by bop", "process resident"):
            match = re.search(r"^  " + re.escape(label) + r" +(\d+)", err, re.MULTILINE)
            self.assertIsNotNone(match, label + " missing in:\n" + err)
            values[label] = int(match.group(1))
        self.assertGreaterEqual(values["allocations"], 2004)
        self.assertLessEqual(values["deallocations"], values["allocations"])
        self.assertEqual(values["outstanding"], values["allocations"] - values["deallocations"])
        self.assertIn("allocations by size class:", err)
        block = usable(result.stdout)
        rows = {int(m.group(1)): int(m.group(2))
                for m in re.finditer(r"^ +(\d+) B +(\d+) #+$", err, re.MULTILINE)}
        self.assertIn(class_of(rows, block), rows, "no histogram row for %d B" % block)
        self.assertGreaterEqual(rows[class_of(rows, block)], 2001)
        self.assertRegex(err, r"(?m)^ +huge B +\d+ #*$")

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

    def test_stats_off(self):
        for stats_mode in (None, "0"):
            result = run([self.probe(), "off"], stats=stats_mode)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("enabled=0 allocations=0 deallocations=0 bytes_allocated=0", result.stdout)
            self.assertNotIn("bop", result.stderr)
        result = run([self.probe(), "off"], stats="1")
        self.assertRegex(result.stdout, r"enabled=1 allocations=[1-9]")
        self.assertIn(TEXT_HEADER, result.stderr)

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
