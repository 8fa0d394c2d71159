#!/usr/bin/env python3
"""tools/bop-report, run by ctest: the HTML page from a real BOP_STATS=json
report, checked as a file (self-contained, its PNG charts decode) and, with
--chromium, rendered by headless Chromium (every chart decoded with a nonzero
size in the DOM; the screenshot is not blank).

usage: report_html_test.py --probe P --tool tools/bop-report [--chromium PATH] [names...]
Run with a python3 that has matplotlib (Debian's python3-matplotlib).
"""
import argparse
import base64
import os
import re
import struct
import subprocess
import sys
import tempfile
import unittest

ARGS = None
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMG_RE = re.compile(r'<img class="chart" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def make_report(tmp, mode, interval=True):
    """Runs the probe in `mode` under BOP_STATS=json; returns the report's path."""
    path = os.path.join(tmp, mode + ".json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOP_")}
    env.update(BOP_STATS="json", BOP_STATS_FILE=path)
    if interval:
        env["BOP_STATS_INTERVAL_MS"] = "10"
    result = subprocess.run([ARGS.probe, mode], env=env, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise AssertionError("probe failed: " + result.stdout + result.stderr)
    return path


def render(report, out):
    result = subprocess.run([sys.executable, ARGS.tool, report, "-o", out], capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError("bop-report failed: " + result.stdout + result.stderr)
    with open(out, encoding="utf-8") as f:
        return f.read()


def png_size(data):
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError("not a PNG")
    return struct.unpack(">II", data[16:24])


class PageTest(unittest.TestCase):
    def test_full_page(self):
        with tempfile.TemporaryDirectory() as tmp:
            page = render(make_report(tmp, "grow"), os.path.join(tmp, "report.html"))
        charts = IMG_RE.findall(page)
        self.assertEqual([alt for alt, _ in charts],
                         ["memory timeline", "size-class histogram", "top allocation sites"])
        for alt, data in charts:
            width, height = png_size(base64.b64decode(data))
            self.assertGreater(width, 200, alt)
            self.assertGreater(height, 100, alt)
        # self-contained: nothing is fetched when the page opens
        self.assertNotRegex(page, r'(src|href)="(?!data:)')
        self.assertNotIn("http://", page)
        self.assertNotIn("https://", page)
        # human units in the summary, exact bytes in the tooltip
        self.assertRegex(page, r'<th>peak memory</th><td class="n" title="[\d,]+ bytes">\d+\.\d MiB</td>')
        self.assertIn("leak_from_known_function", page)

    def test_without_timeline(self):
        with tempfile.TemporaryDirectory() as tmp:
            page = render(make_report(tmp, "leak", interval=False), os.path.join(tmp, "report.html"))
        self.assertEqual([alt for alt, _ in IMG_RE.findall(page)], ["size-class histogram", "top allocation sites"])
        self.assertIn("No timeline: run with BOP_STATS_INTERVAL_MS", page)

    def test_report_inside_other_text(self):
        # a captured stderr: the JSON line among others
        with tempfile.TemporaryDirectory() as tmp:
            report = make_report(tmp, "leak", interval=False)
            mixed = os.path.join(tmp, "stderr.txt")
            with open(report) as f, open(mixed, "w") as out:
                out.write("some program output\n" + f.read() + "more output\n")
            page = render(mixed, os.path.join(tmp, "report.html"))
        self.assertIn("leak_from_known_function", page)

    def test_not_a_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.json")
            with open(bad, "w") as f:
                f.write("not json\n")
            result = subprocess.run([sys.executable, ARGS.tool, bad, "-o", os.path.join(tmp, "x.html")],
                                    capture_output=True, text=True, timeout=60)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("no bop JSON report", result.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "x.html")))


class ChromiumTest(unittest.TestCase):
    """The page as a browser shows it."""

    def chromium(self, tmp, *args):
        profile = tempfile.mkdtemp(dir=tmp)  # a fresh profile per run
        result = subprocess.run([ARGS.chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        return result.stdout

    def test_charts_render(self):
        if not ARGS.chromium:
            self.skipTest("no chromium")
        import matplotlib.image
        with tempfile.TemporaryDirectory() as tmp:
            html_path = os.path.join(tmp, "report.html")
            render(make_report(tmp, "grow"), html_path)
            url = "file://" + html_path
            dom = self.chromium(tmp, "--dump-dom", url)
            # the page's own check, run on load: every chart decoded, nonzero size
            self.assertRegex(dom, r'<body data-charts="3" data-charts-ok="3">')
            shot = os.path.join(tmp, "shot.png")
            self.chromium(tmp, f"--screenshot={shot}", "--window-size=1100,1800", url)
            pixels = matplotlib.image.imread(shot)[:, :, :3]
        self.assertEqual(pixels.shape[:2], (1800, 1100))
        # not blank: a good share of the page is drawn (charts, text), in colour
        drawn = (pixels < 0.9).any(axis=2).mean()
        self.assertGreater(drawn, 0.05)
        self.assertGreater(pixels.std(), 0.05)
        colourful = (abs(pixels[:, :, 0] - pixels[:, :, 2]) > 0.2).mean()  # chart lines and bars
        self.assertGreater(colourful, 0.005)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", required=True)
    parser.add_argument("--tool", required=True)
    parser.add_argument("--chromium", default="")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v"] + rest)
