#!/usr/bin/env python3
"""Tests of bop as an installed library, run by ctest (one test per case).

InstallTest: `cmake --install` into a fresh prefix puts every file where
  GNUInstallDirs says, with libbop.so.0 -> libbop.so.0.1.0 (SONAME libbop.so.0).
ConsumerBuild, ConsumerRun: tests/consumer built with find_package(bop) and
  run three ways: bop::bop (libbop.so), bop::bop_static (malloc untouched),
  bop::override (the executable's own malloc is bop's); a version the package
  does not provide is refused.
PkgConfigTest: the same program built with `cc $(pkg-config ... bop)` and
  `cc $(pkg-config ... bop-override)`.
LauncherTest: the bop launcher (build tree or installed): --version, --help,
  errors, python3 and sh -c served by bop, --stats=json, exit codes and
  signals passed through, LD_PRELOAD kept, `bop report`.
PackageTest: `cpack -G DEB` makes bop_<v>_<arch>.deb and bop-dev_<v>_<arch>.deb
  with the right names, Depends, shlibs, ldconfig calls and files.

--system (used by deb_roundtrip.sh after dpkg -i): the consumer finds bop in
the system's default paths (no CMAKE_PREFIX_PATH, PKG_CONFIG_PATH or rpath).

usage: install_test.py --source DIR --build DIR --prefix DIR --libdir DIR
                       --work DIR --version V [--launcher PATH] [--built-lib SO]
                       [--cmake EXE] [--cpack EXE] [--cc CC] [--system]
                       [unittest names...]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

ARGS = None  # the command line's paths


def run(cmd, env_extra=None, cwd=None, timeout=120):
    """Runs cmd without any BOP_* or LD_PRELOAD from our environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOP_") and k != "LD_PRELOAD"}
    env.update(env_extra or {})
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def check_run(test, cmd, **kwargs):
    """run() that fails the test (showing the output) unless cmd exits 0."""
    result = run(cmd, **kwargs)
    test.assertEqual(result.returncode, 0,
                     "%s\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), result.stdout, result.stderr))
    return result


def libbop_so0():
    return os.path.join(ARGS.libdir, "libbop.so.0")


def same_file(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def consumer_facts(stdout, *keys):
    """The key=value lines tests/consumer/consumer.c (or a probe) prints."""
    facts = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    for key in keys or ("version", "bop_alloc_in", "malloc_in", "malloc_counted"):
        if key not in facts:
            raise AssertionError("consumer printed no %s:\n%s" % (key, stdout))
    return facts


def check_consumer(test, exe, api_in_libbop, malloc_by_bop):
    """Runs a consumer build with BOP_STATS=1 and checks what it reports:
    where bop_alloc and malloc come from, and whether bop counted malloc."""
    result = run([exe], env_extra={"BOP_STATS": "1"})
    test.assertEqual(result.returncode, 0, result.stdout + result.stderr)
    test.assertNotIn("FAIL", result.stdout)
    facts = consumer_facts(result.stdout)
    test.assertEqual(facts["version"], ARGS.version)
    if api_in_libbop:
        test.assertTrue(same_file(facts["bop_alloc_in"], libbop_so0()), facts["bop_alloc_in"])
    else:
        test.assertEqual(facts["bop_alloc_in"], "executable")
    counted = int(facts["malloc_counted"])
    if malloc_by_bop:
        test.assertGreaterEqual(counted, 1000, "bop did not serve the program's malloc")
        expected = libbop_so0() if api_in_libbop else "executable"
        test.assertTrue(facts["malloc_in"] == expected or same_file(facts["malloc_in"], expected),
                        facts["malloc_in"])
    else:
        test.assertEqual(counted, 0, "bop counted mallocs it should not serve")
        test.assertNotEqual(facts["malloc_in"], "executable")
        test.assertFalse(same_file(facts["malloc_in"], libbop_so0()), facts["malloc_in"])
    return facts


class InstallTest(unittest.TestCase):
    def test_install(self):
        shutil.rmtree(ARGS.prefix, ignore_errors=True)
        check_run(self, [ARGS.cmake, "--install", ARGS.build, "--prefix", ARGS.prefix])
        lib = ARGS.libdir
        real = os.path.join(lib, "libbop.so." + ARGS.version)
        self.assertTrue(os.path.isfile(real) and not os.path.islink(real), real)
        self.assertEqual(os.readlink(os.path.join(lib, "libbop.so.0")), os.path.basename(real))
        self.assertEqual(os.readlink(os.path.join(lib, "libbop.so")), "libbop.so.0")
        dynamic = check_run(self, ["readelf", "-d", real]).stdout
        self.assertIn("Library soname: [libbop.so.0]", dynamic)
        for name in ("libbop.a", "libbop-override.a", "cmake/bop/bopConfig.cmake",
                     "cmake/bop/bopConfigVersion.cmake", "cmake/bop/bopTargets.cmake",
                     "pkgconfig/bop.pc", "pkgconfig/bop-override.pc"):
            self.assertTrue(os.path.isfile(os.path.join(lib, name)), name)
        for name in ("bop.h", "version.h", "allocator.hpp", "global.hpp", "stats.hpp", "stl.hpp"):
            self.assertTrue(os.path.isfile(os.path.join(ARGS.prefix, "include/bop", name)), name)
        self.assertTrue(os.access(os.path.join(ARGS.prefix, "bin/bop"), os.X_OK))
        self.assertTrue(os.path.isfile(os.path.join(ARGS.prefix, "share/doc/bop/README.md")))
        with open(os.path.join(lib, "pkgconfig/bop.pc")) as pc:
            self.assertIn("prefix=%s\n" % ARGS.prefix, pc.read())
        with open(os.path.join(ARGS.prefix, "include/bop/version.h")) as header:
            self.assertIn('#define BOP_VERSION_STRING "%s"' % ARGS.version, header.read())


def consumer_dir(name):
    return os.path.join(ARGS.work, name)


def configure_consumer(build_dir, *extra):
    cmd = [ARGS.cmake, "-S", os.path.join(ARGS.source, "tests/consumer"), "-B", build_dir,
           "-DCMAKE_C_COMPILER=" + ARGS.cc, "-DCMAKE_BUILD_TYPE=Release"]
    if not ARGS.system:
        cmd.append("-DCMAKE_PREFIX_PATH=" + ARGS.prefix)
    return run(cmd + list(extra))


class ConsumerBuild(unittest.TestCase):
    def test_build(self):
        build_dir = consumer_dir("consumer")
        shutil.rmtree(build_dir, ignore_errors=True)
        configured = configure_consumer(build_dir)
        self.assertEqual(configured.returncode, 0, configured.stdout + configured.stderr)
        self.assertIn("found bop %s in %s" % (ARGS.version, os.path.join(ARGS.libdir, "cmake/bop")),
                      configured.stdout)
        check_run(self, [ARGS.cmake, "--build", build_dir])

    def test_newer_version_is_refused(self):
        # 0.x: 0.<minor+1> is not compatible, so find_package must fail.
        major, minor = ARGS.version.split(".")[:2]
        build_dir = consumer_dir("consumer-version")
        shutil.rmtree(build_dir, ignore_errors=True)
        newer = "%s.%d" % (major, int(minor) + 1)
        result = configure_consumer(build_dir, "-DBOP_CONSUMER_REQUIRE=" + newer)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertRegex(result.stderr, r'compatible\s+with requested version "%s"' % newer)
        self.assertIn("bopConfig.cmake, version: " + ARGS.version, result.stderr)


class ConsumerRun(unittest.TestCase):
    """Runs what ConsumerBuild built (ctest orders them with a fixture)."""

    def exe(self, kind):
        path = os.path.join(consumer_dir("consumer"), "consumer_" + kind)
        if not os.path.exists(path):
            self.fail("%s is not built (ConsumerBuild.test_build failed?)" % path)
        return path

    def test_bop(self):
        # libbop.so: the API, and (as the first library defining it) malloc.
        check_consumer(self, self.exe("bop"), api_in_libbop=True, malloc_by_bop=True)

    def test_bop_static(self):
        check_consumer(self, self.exe("bop_static"), api_in_libbop=False, malloc_by_bop=False)

    def test_override(self):
        check_consumer(self, self.exe("override"), api_in_libbop=False, malloc_by_bop=True)
        needed = check_run(self, ["readelf", "-d", self.exe("override")]).stdout
        self.assertNotIn("libbop", needed)


class PkgConfigTest(unittest.TestCase):
    def build(self, package):
        env = {} if ARGS.system else {"PKG_CONFIG_PATH": os.path.join(ARGS.libdir, "pkgconfig")}
        flags = check_run(self, ["pkg-config", "--cflags", "--libs", package], env_extra=env).stdout
        version = check_run(self, ["pkg-config", "--modversion", package], env_extra=env).stdout
        self.assertEqual(version.strip(), ARGS.version)
        exe = os.path.join(ARGS.work, "pkgconfig_" + package)
        cmd = [ARGS.cc, "-O2", os.path.join(ARGS.source, "tests/consumer/consumer.c"), "-o", exe]
        cmd += flags.split() + ["-ldl"]
        if not ARGS.system:
            cmd.append("-Wl,-rpath," + ARGS.libdir)
        check_run(self, cmd)
        return exe

    def test_bop(self):
        check_consumer(self, self.build("bop"), api_in_libbop=True, malloc_by_bop=True)

    def test_bop_override(self):
        check_consumer(self, self.build("bop-override"), api_in_libbop=False, malloc_by_bop=True)


# Prints the object that the process's malloc resolves to, checks that it
# agrees with bop's own view of a block, and exits 7.
PYTHON_PROBE = r"""
import ctypes, sys
class DlInfo(ctypes.Structure):
    _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
libs = ctypes.CDLL(None)
libs.malloc.restype = ctypes.c_void_p
for f in (libs.malloc_usable_size, libs.bop_malloc_usable_size, libs.free):
    f.argtypes = [ctypes.c_void_p]
libs.malloc_usable_size.restype = libs.bop_malloc_usable_size.restype = ctypes.c_size_t
p = libs.malloc(1000)
assert libs.malloc_usable_size(p) == libs.bop_malloc_usable_size(p) >= 1000
libs.free(p)
info = DlInfo()
assert libs.dladdr(ctypes.cast(libs.malloc, ctypes.c_void_p), ctypes.byref(info))
print("malloc_in=" + info.fname.decode())
sys.exit(7)
"""


class LauncherTest(unittest.TestCase):
    def setUp(self):
        if not ARGS.launcher:
            self.fail("no --launcher given")

    def bop(self, *args, env_extra=None, launcher=None):
        return run([launcher or ARGS.launcher] + list(args), env_extra=env_extra, timeout=60)

    def assert_one_line_error(self, result, status, *words):
        self.assertEqual(result.returncode, status, result.stderr)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("bop: "), lines[0])
        for word in words:
            self.assertIn(word, lines[0])

    def test_version(self):
        result = self.bop("--version")
        self.assertEqual((result.returncode, result.stdout), (0, "bop %s\n" % ARGS.version))

    def test_help(self):
        result = self.bop("--help")
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith("usage: bop [--stats | --stats=json] [--] program"))

    def test_missing_program(self):
        self.assert_one_line_error(self.bop("--", "/no/such/program"), 127, "/no/such/program")

    def test_program_not_in_path(self):
        self.assert_one_line_error(self.bop("bop-test-no-such-program"), 127,
                                   "bop-test-no-such-program")

    def test_directory_is_not_a_program(self):
        self.assert_one_line_error(self.bop("--", "/"), 126, "/")

    def test_usage_errors(self):
        self.assert_one_line_error(self.bop(), 2, "no program")
        self.assert_one_line_error(self.bop("--no-such-option", "true"), 2, "--no-such-option")
        self.assert_one_line_error(self.bop("--stats=xml", "true"), 2, "xml")

    def test_python3_is_served_by_bop(self):
        result = self.bop("--", "python3", "-c", PYTHON_PROBE)
        self.assertEqual(result.returncode, 7, result.stdout + result.stderr)
        malloc_in = consumer_facts(result.stdout, "malloc_in")["malloc_in"]
        self.assertTrue(same_file(malloc_in, libbop_so0()), result.stdout)

    def test_stats_json_through_sh(self):
        # dash exits with _exit (no report of its own); the python3 it starts
        # inherits the preload and the stats mode and reports at exit.
        result = self.bop("--stats=json", "--", "sh", "-c",
                          'python3 -c "print(6 * 7)"; echo done')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "42\ndone\n")
        reports = [json.loads(line)["bop_stats"] for line in result.stderr.splitlines()
                   if line.startswith('{"bop_stats"')]
        self.assertGreaterEqual(len(reports), 1, result.stderr)
        for report in reports:
            self.assertGreater(report["allocations"], 100)
            self.assertLessEqual(report["deallocations"], report["allocations"])

    def test_stats_text(self):
        result = self.bop("--stats", "python3", "-c", "pass")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("bop: memory report", result.stderr)

    def test_exit_status_passes_through(self):
        self.assertEqual(self.bop("--", "sh", "-c", "exit 3").returncode, 3)

    def test_signal_passes_through(self):
        # exec: the program is the process, so its signal death is the caller's.
        result = self.bop("sh", "-c", "kill -TERM $$")
        self.assertEqual(result.returncode, -signal.SIGTERM, result.stderr)

    def test_existing_preload_is_kept(self):
        other = "libdl.so.2"  # a library no shell loads by itself
        result = self.bop("--", "sh", "-c", 'echo "$LD_PRELOAD"; cat /proc/self/maps',
                          env_extra={"LD_PRELOAD": other})
        self.assertEqual(result.returncode, 0, result.stderr)
        first, maps = result.stdout.split("\n", 1)
        ours, theirs = first.split(":")
        self.assertTrue(same_file(ours, libbop_so0()), first)  # bop first: it must win malloc
        self.assertEqual(theirs, other)
        self.assertIn(other, maps)
        self.assertIn(os.path.realpath(libbop_so0()), maps)

    def test_found_through_a_symlink(self):
        with tempfile.TemporaryDirectory() as tmp:
            link = os.path.join(tmp, "bop")
            os.symlink(os.path.realpath(ARGS.launcher), link)
            result = self.bop("--", "sh", "-c", 'echo "$LD_PRELOAD"', launcher=link)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertTrue(same_file(result.stdout.strip(), libbop_so0()), result.stdout)

    def test_report_without_the_tool(self):
        # A copy of the launcher alone in a directory: no bop-report beside it.
        with tempfile.TemporaryDirectory() as tmp:
            launcher = shutil.copy(ARGS.launcher, os.path.join(tmp, "bop"))
            result = self.bop("report", "stats.json", "-o", "report.html", launcher=launcher)
            self.assert_one_line_error(result, 127, "bop-report")

    def test_report_runs_the_tool_beside_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            launcher = shutil.copy(ARGS.launcher, os.path.join(tmp, "bop"))
            tool = os.path.join(tmp, "bop-report")
            with open(tool, "w") as f:
                f.write('#!/bin/sh\necho "report tool got: $*"\nexit 5\n')
            os.chmod(tool, 0o755)
            result = self.bop("report", "stats.json", "-o", "report.html", launcher=launcher)
            self.assertEqual(result.returncode, 5, result.stderr)
            self.assertEqual(result.stdout, "report tool got: stats.json -o report.html\n")

    def test_report_tool_is_beside_the_launcher(self):
        if not os.path.exists(os.path.join(ARGS.source, "tools/bop-report")):
            self.skipTest("tools/bop-report is not in this tree")
        self.assertTrue(os.access(os.path.join(os.path.dirname(ARGS.launcher), "bop-report"),
                                  os.X_OK))


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


class PackageTest(unittest.TestCase):
    def test_deb(self):
        if not shutil.which("dpkg-deb"):
            self.skipTest("not a Debian system (no dpkg-deb)")
        out = os.path.join(ARGS.work, "deb")
        shutil.rmtree(out, ignore_errors=True)
        check_run(self, [ARGS.cpack, "-G", "DEB", "-B", out,
                         "--config", os.path.join(ARGS.build, "CPackConfig.cmake")])
        arch = check_run(self, ["dpkg", "--print-architecture"]).stdout.strip()
        runtime = os.path.join(out, "bop_%s_%s.deb" % (ARGS.version, arch))
        dev = os.path.join(out, "bop-dev_%s_%s.deb" % (ARGS.version, arch))
        self.assertEqual(sorted(f for f in os.listdir(out) if f.endswith(".deb")),
                         sorted(map(os.path.basename, (runtime, dev))))

        def field(deb, name):
            return check_run(self, ["dpkg-deb", "--field", deb, name]).stdout.strip()

        def files(deb):
            listing = check_run(self, ["dpkg-deb", "--contents", deb]).stdout
            return {line.split()[5] for line in listing.splitlines() if not line.startswith("d")}

        # Depends names a glibc at least as new as every GLIBC_x.y symbol
        # version libbop.so.0 uses.
        depends = re.fullmatch(r"libc6 \(>= ([0-9.]+)\)", field(runtime, "Depends"))
        self.assertTrue(depends, field(runtime, "Depends"))
        symbols = check_run(self, ["readelf", "--dyn-syms", "-W", ARGS.built_lib]).stdout
        needed = max(version_tuple(v) for v in re.findall(r"@GLIBC_([0-9.]+)", symbols))
        self.assertLessEqual(needed, version_tuple(depends.group(1)))
        self.assertEqual(field(dev, "Depends"), "bop (= %s)" % ARGS.version)
        with tempfile.TemporaryDirectory() as control:
            check_run(self, ["dpkg-deb", "--control", runtime, control])
            with open(os.path.join(control, "shlibs")) as f:
                self.assertEqual(f.read().strip(), "libbop 0 bop (>= %s)" % ARGS.version)
            with open(os.path.join(control, "triggers")) as f:
                self.assertEqual(f.read().strip(), "activate-noawait ldconfig")
            # No maintainer scripts: dpkg -r then forgets the package entirely.
            self.assertEqual(sorted(os.listdir(control)),
                             ["control", "md5sums", "shlibs", "triggers"])

        lib = "./usr/lib/"
        runtime_files, dev_files = files(runtime), files(dev)
        self.assertLessEqual({lib + "libbop.so.0", lib + "libbop.so.%s" % ARGS.version,
                              "./usr/bin/bop", "./usr/share/doc/bop/README.md"}, runtime_files)
        self.assertLessEqual({lib + "libbop.so", lib + "libbop.a", lib + "libbop-override.a",
                              lib + "cmake/bop/bopConfig.cmake", lib + "pkgconfig/bop.pc",
                              lib + "pkgconfig/bop-override.pc", "./usr/include/bop/bop.h",
                              "./usr/include/bop/version.h"}, dev_files)
        self.assertEqual(runtime_files & dev_files, set())
        for path in runtime_files | dev_files:
            self.assertTrue(path.startswith("./usr/"), path)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--build", default="")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--libdir", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--launcher", default="")
    parser.add_argument("--built-lib", default="")  # the build tree's libbop.so.<version>
    parser.add_argument("--cmake", default="cmake")
    parser.add_argument("--cpack", default="cpack")
    parser.add_argument("--cc", default="cc")
    parser.add_argument("--system", action="store_true")
    ARGS, rest = parser.parse_known_args()
    os.makedirs(ARGS.work, exist_ok=True)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
