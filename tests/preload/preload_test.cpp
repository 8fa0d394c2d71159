// preload_test: real programs run under LD_PRELOAD=libbop.so, succeed, and
// are shown -- independently of bop's own reporting -- to have been served
// by bop: the Python interpreter, the g++ toolchain (driver, cc1plus, as,
// collect2, ld) and a small C++ probe.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../test_util.hpp"

extern char** environ;

using bop_test::ChildResult;

namespace {

const std::string kLibBop = BOP_SHARED_LIB;
const std::string kProbe = BOP_PRELOAD_PROBE;
const std::string kPython = BOP_PYTHON3;
const std::string kPyScript = BOP_PY_SCRIPT;
const std::string kGxx = BOP_GXX;

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/bop_preload_XXXXXX";
    char* d = mkdtemp(tmpl);
    if (d) path_ = d;
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs argv with the current environment minus any inherited allocator or
// loader settings, plus `env`; stdout and stderr go to `log`.
ChildResult RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       const std::string& log, const std::string& cwd = "",
                       double timeout_s = 120) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string var = *e;
    if (var.rfind("LD_PRELOAD=", 0) == 0 || var.rfind("LD_DEBUG", 0) == 0 ||
        var.rfind("PYTHONMALLOC=", 0) == 0 || var.rfind("MALLOC_", 0) == 0)
      continue;
    env_strings.push_back(var);
  }
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ChildResult r;
    r.exit_code = -rc;
    return r;
  }
  return bop_test::WaitChild(pid, timeout_s);
}

// What LD_DEBUG=files,bindings says about one process: its program name
// and, per symbol, the objects that symbol was bound to.
struct Bindings {
  std::string program;
  std::map<std::string, std::vector<std::string>> targets;
};

std::vector<Bindings> ParseLdDebug(const std::string& dir) {
  std::vector<Bindings> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("ld.", 0) != 0) continue;
    Bindings b;
    std::istringstream in(ReadFile(dir + "/" + name));
    std::string line;
    while (std::getline(in, line)) {
      std::size_t at = line.find("initialize program: ");
      if (at != std::string::npos) b.program = line.substr(at + 20);
      // "... binding file A [0] to B [0]: normal symbol `malloc' [GLIBC_2.2.5]"
      std::size_t to = line.find(" to ");
      std::size_t sym = line.find("symbol `");
      if (line.find("binding file ") == std::string::npos || to == std::string::npos ||
          sym == std::string::npos)
        continue;
      std::size_t target_end = line.find(" [", to);
      std::string target = line.substr(to + 4, target_end - to - 4);
      std::size_t sym_end = line.find('\'', sym);
      b.targets[line.substr(sym + 8, sym_end - sym - 8)].push_back(target);
    }
    out.push_back(b);
  }
  closedir(d);
  return out;
}

// libbop.so, or its versioned names libbop.so.0 and libbop.so.0.1.0.
bool EndsWithLibBop(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return name.rfind("libbop.so", 0) == 0;
}

bool Exists(const std::string& path) {
  return access(path.c_str(), X_OK) == 0;
}

}  // namespace

// The probe confirms from the inside that every malloc-family and operator
// new/delete symbol of the process is libbop.so's, and works with threads
// and fork.
TEST(Preload, ProbeIsServedByBop) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  std::string log = tmp.path() + "/probe.log";
  ChildResult r = RunProgram({kProbe}, {"LD_PRELOAD=" + kLibBop}, log);
  EXPECT_TRUE(r.ok()) << r.describe() << "\n" << ReadFile(log);
}

// Without the preload the same probe reports that bop is absent: its checks
// can tell the difference.
TEST(Preload, ProbeDetectsMissingBop) {
  TempDir tmp;
  std::string log = tmp.path() + "/probe.log";
  ChildResult r = RunProgram({kProbe}, {}, log);
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.describe() << "\n" << ReadFile(log);
}

// Python with every object malloc'd: an allocation-heavy script succeeds and
// proves (maps + symbol lookups + block sizes) that malloc is bop's.
TEST(Preload, PythonRunsOnBop) {
  if (!Exists(kPython)) GTEST_SKIP() << "python3 not found";
  TempDir tmp;
  std::string log = tmp.path() + "/python.log";
  ChildResult r =
      RunProgram({kPython, kPyScript}, {"LD_PRELOAD=" + kLibBop, "PYTHONMALLOC=malloc"}, log);
  std::string out = ReadFile(log);
  EXPECT_TRUE(r.ok()) << r.describe() << "\n" << out;
  EXPECT_NE(out.find("bop-python-ok"), std::string::npos) << out;
}

// The script's checks fail without bop (exit code 2 = bop not loaded).
TEST(Preload, PythonDetectsMissingBop) {
  if (!Exists(kPython)) GTEST_SKIP() << "python3 not found";
  TempDir tmp;
  std::string log = tmp.path() + "/python.log";
  ChildResult r = RunProgram({kPython, kPyScript}, {"PYTHONMALLOC=malloc"}, log);
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.describe() << "\n" << ReadFile(log);
}

// g++ compiles and links a small C++ program under the preload; the dynamic
// linker's own trace (LD_DEBUG=bindings) shows that in the driver and in
// cc1plus every binding of malloc/free/calloc/realloc went to libbop.so.
TEST(Preload, GxxCompilesOnBop) {
  if (!Exists(kGxx)) GTEST_SKIP() << "g++ not found";
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  {
    std::ofstream src(tmp.path() + "/hello.cpp");
    src << "#include <iostream>\n#include <map>\n#include <string>\n#include <vector>\n"
           "int main() {\n"
           "  std::map<std::string, std::vector<int>> m;\n"
           "  for (int i = 0; i < 100; ++i) m[std::to_string(i)].push_back(i * i);\n"
           "  long sum = 0;\n"
           "  for (auto& [k, v] : m) sum += v[0];\n"
           "  std::cout << \"sum=\" << sum << std::endl;\n"
           "}\n";
  }
  std::string ld_dir = tmp.path() + "/ld";
  ASSERT_EQ(mkdir(ld_dir.c_str(), 0755), 0);
  std::string log = tmp.path() + "/gxx.log";
  ChildResult r = RunProgram(
      {kGxx, "-O1", "-std=c++17", "hello.cpp", "-o", "hello"},
      {"LD_PRELOAD=" + kLibBop, "LD_DEBUG=files,bindings", "LD_DEBUG_OUTPUT=" + ld_dir + "/ld"},
      log, tmp.path());
  ASSERT_TRUE(r.ok()) << "g++ failed under LD_PRELOAD: " << r.describe() << "\n" << ReadFile(log);

  // The compiled program is correct (sum of i*i for i < 100).
  std::string run_log = tmp.path() + "/hello.log";
  ChildResult hello = RunProgram({tmp.path() + "/hello"}, {}, run_log);
  EXPECT_TRUE(hello.ok()) << hello.describe();
  EXPECT_NE(ReadFile(run_log).find("sum=328350"), std::string::npos) << ReadFile(run_log);

  std::vector<Bindings> procs = ParseLdDebug(ld_dir);
  bool saw_cc1plus = false, saw_driver = false;
  for (const Bindings& b : procs) {
    bool is_cc1plus = b.program.find("cc1plus") != std::string::npos;
    bool is_driver = b.program.find("g++") != std::string::npos;
    saw_cc1plus |= is_cc1plus;
    saw_driver |= is_driver;
    auto it = b.targets.find("malloc");
    if (is_cc1plus || is_driver) {
      ASSERT_NE(it, b.targets.end()) << b.program << " never bound malloc";
    }
    // In every process of the toolchain, each malloc-family binding is bop's.
    // (A binding to the program itself is its canonical PLT address, used
    // when the program takes the function's address; its calls still go
    // through the PLT to the real definition.)
    for (const char* sym : {"malloc", "free", "calloc", "realloc"}) {
      auto s = b.targets.find(sym);
      if (s == b.targets.end()) continue;
      bool to_bop = false;
      for (const std::string& target : s->second) {
        to_bop |= EndsWithLibBop(target);
        EXPECT_TRUE(EndsWithLibBop(target) || target == b.program)
            << b.program << ": `" << sym << "' bound to " << target << ", not libbop.so";
      }
      EXPECT_TRUE(to_bop) << b.program << ": `" << sym << "' never bound to libbop.so";
    }
  }
  EXPECT_TRUE(saw_cc1plus) << "no LD_DEBUG trace of cc1plus (" << procs.size() << " processes)";
  EXPECT_TRUE(saw_driver) << "no LD_DEBUG trace of the g++ driver";
}
