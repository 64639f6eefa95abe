#include "tests/test_support.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "model/weights/safetensors.h"

namespace fs = std::filesystem;

namespace clipcap::test {

std::string binary_dir() {
  static const std::string dir = fs::canonical("/proc/self/exe").parent_path().parent_path().string();
  return dir;
}

std::string source_dir() {
  static const std::string dir = [] {
    if (const char* env = std::getenv("CLIPCAP_SOURCE_DIR"); env && *env) return std::string(env);
    const std::string cache = binary_dir() + "/CMakeCache.txt";
    std::ifstream in(cache);
    const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
    for (std::string line; std::getline(in, line);)
      if (line.rfind(key, 0) == 0) return line.substr(key.size());
    throw Error(cache + ": no CMAKE_HOME_DIRECTORY (set CLIPCAP_SOURCE_DIR to the checkout)");
  }();
  return dir;
}

std::string source_path(const std::string& relative) { return source_dir() + "/" + relative; }

std::string fixtures_dir() {
  if (const char* env = std::getenv("CLIPCAP_FIXTURES"); env && *env) return env;
  fs::path shared = fs::path(source_dir()).parent_path() / "shared" / "fixtures";
  if (fs::exists(shared / "manifest.json")) return shared.string();
  return (fs::path(source_dir()) / "tests" / "fixtures").string();
}

std::string fixture(const std::string& relative) { return fixtures_dir() + "/" + relative; }

const std::map<std::string, torch::Tensor>& expected(const std::string& file) {
  static std::mutex mu;
  static std::map<std::string, std::map<std::string, torch::Tensor>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(file);
  if (it == cache.end()) it = cache.emplace(file, load_safetensors(fixture("expected/" + file))).first;
  return it->second;
}

const torch::Tensor& expected_tensor(const std::string& file, const std::string& name) {
  const auto& m = expected(file);
  auto it = m.find(name);
  if (it == m.end()) throw std::runtime_error("fixture tensor missing: " + file + ":" + name);
  return it->second;
}

namespace {
struct TempRoot {
  fs::path root;
  TempRoot() {
    root = fs::path(binary_dir()) / "test-tmp" / std::to_string(::getpid());
    fs::create_directories(root);
  }
  ~TempRoot() {
    std::error_code ec;
    if (!std::getenv("CLIPCAP_KEEP_TEST_TMP")) fs::remove_all(root, ec);
  }
};
}  // namespace

std::string temp_dir(const std::string& tag) {
  static TempRoot root;
  static int counter = 0;
  fs::path p = root.root / (tag + "-" + std::to_string(counter++));
  fs::create_directories(p);
  return p.string();
}

namespace {

// Modification times and sizes of what the cached fixtures are made with.
std::string build_stamp() {
  std::string key;
  std::error_code ec;
  // The same key in every test executable: a key of its own (its /proc/self/exe) made each one
  // delete the others' fixtures as "of an earlier build" while their tests used them.
  std::vector<fs::path> inputs;
  for (const char* t : {"clipcap-data", "clipcap-train", "clipcap-eval", "clipcap-infer", "libclipcap_spm.so",
                        "tests/clipcap_unit_tests", "tests/clipcap_cli_tests", "tests/clipcap_slow_tests"})
    inputs.push_back(fs::path(binary_dir()) / t);
  for (const auto& p : inputs) {
    const auto t = fs::last_write_time(p, ec);
    key += p.filename().string() + ":" + std::to_string(ec ? 0 : t.time_since_epoch().count()) + ":" +
           std::to_string(ec ? 0 : fs::file_size(p, ec)) + ";";
  }
  return std::to_string(std::hash<std::string>{}(key));
}

// flock() on a file for the lifetime of the object.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR, 0644)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  int fd_;
};

}  // namespace

namespace {

// Makes BUILD/test-cache/<stamp>/<relative> with make(staging) unless it is there, one maker at a
// time; a maker that reported a failure leaves nothing behind, so the next test process tries again.
std::string cached(const std::string& relative, const std::function<void(const std::string&)>& make, bool directory) {
  static const std::string stamp = build_stamp();
  const fs::path cache = fs::path(binary_dir()) / "test-cache";
  const fs::path root = cache / stamp, target = root / relative;
  if (fs::exists(target)) return target.string();
  fs::create_directories(target.parent_path());
  std::string lock_name = relative;
  for (char& c : lock_name) c = c == '/' ? '_' : c;
  FileLock lock(cache / (lock_name + ".lock"));
  if (fs::exists(target)) return target.string();  // made by another process while this one waited
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache, ec))  // fixtures of earlier builds
    if (e.is_directory() && e.path() != root) fs::remove_all(e.path(), ec);
  const fs::path staging = target.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(staging, ec);
  if (directory) fs::create_directories(staging);
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const int parts_before = test ? test->result()->total_part_count() : 0;
  make(staging.string());
  if (test && test->result()->total_part_count() > parts_before) {
    fs::remove_all(staging, ec);
    throw std::runtime_error("could not make the test fixture " + relative);
  }
  fs::rename(staging, target);
  return target.string();
}

}  // namespace

std::string cached_dir(const std::string& name, const std::function<void(const std::string& dir)>& make) {
  return cached(name, make, /*directory=*/true);
}

std::string cached_file(const std::string& group, const std::string& name,
                        const std::function<void(const std::string& path)>& make) {
  return cached(group + "/" + name, make, /*directory=*/false);
}

std::string tool(const std::string& name) { return (fs::path(binary_dir()) / name).string(); }

RunResult run(const std::string& command_line) {
  std::string dir = temp_dir("run");
  std::string out = dir + "/stdout", err = dir + "/stderr";
  std::string cmd = "( " + command_line + " ) </dev/null >'" + out + "' 2>'" + err + "'";
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

::testing::AssertionResult tensors_near(const torch::Tensor& got, const torch::Tensor& want, double abs_tol) {
  if (got.sizes() != want.sizes()) {
    std::ostringstream s;
    s << "shape " << got.sizes() << " != expected " << want.sizes();
    return ::testing::AssertionFailure() << s.str();
  }
  auto g = got.detach().to(torch::kCPU, torch::kFloat64);
  auto w = want.detach().to(torch::kCPU, torch::kFloat64);
  double diff = g.numel() ? (g - w).abs().max().item<double>() : 0.0;
  if (!(diff <= abs_tol))
    return ::testing::AssertionFailure() << "max abs diff " << diff << " > " << abs_tol;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult tensors_equal(const torch::Tensor& got, const torch::Tensor& want) {
  if (got.sizes() != want.sizes()) {
    std::ostringstream s;
    s << "shape " << got.sizes() << " != expected " << want.sizes();
    return ::testing::AssertionFailure() << s.str();
  }
  if (got.scalar_type() != want.scalar_type())
    return ::testing::AssertionFailure() << "dtype " << got.scalar_type() << " != " << want.scalar_type();
  if (!torch::equal(got.cpu(), want.cpu())) {
    auto ne = (got.cpu() != want.cpu()).sum().item<int64_t>();
    return ::testing::AssertionFailure() << ne << " of " << got.numel() << " elements differ";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace clipcap::test
