#include "tests/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/atomic_file.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace clipcap::test {

std::string fixtures_dir() {
  if (const char* env = std::getenv("CLIPCAP_FIXTURES"); env && *env) return env;
  fs::path shared = fs::path(CLIPCAP_SOURCE_DIR).parent_path() / "shared" / "fixtures";
  if (fs::exists(shared / "manifest.json")) return shared.string();
  return (fs::path(CLIPCAP_SOURCE_DIR) / "tests" / "fixtures").string();
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
    root = fs::path(CLIPCAP_BINARY_DIR) / "test-tmp" / std::to_string(::getpid());
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

std::string tool(const std::string& name) { return (fs::path(CLIPCAP_BINARY_DIR) / name).string(); }

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
