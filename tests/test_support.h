// Helpers shared by the gtest files: where the fixtures are, tensor comparisons, running the real
// executables.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include "common/error.h"

#include <functional>
#include <initializer_list>
#include <map>
#include <string>

namespace clipcap::test {

// The build directory (the one holding tests/<this executable>) and the checkout it was configured
// from ($CLIPCAP_SOURCE_DIR, else the build's CMakeCache.txt). Found at run time, not compiled in:
// an absolute path in the compile flags made every test file a compiler-cache miss in a new clone.
std::string binary_dir();
std::string source_dir();
std::string source_path(const std::string& relative);  // source_dir() + "/" + relative

// Golden fixtures: $CLIPCAP_FIXTURES, else ../shared/fixtures beside the checkout (so held-out
// fixtures dropped there are used), else the copy in tests/fixtures.
std::string fixtures_dir();
std::string fixture(const std::string& relative);  // fixtures_dir() + "/" + relative
// expected/<file>.safetensors, loaded once per process.
const std::map<std::string, torch::Tensor>& expected(const std::string& file);
const torch::Tensor& expected_tensor(const std::string& file, const std::string& name);

// A fresh empty directory under the build tree, removed at process exit.
std::string temp_dir(const std::string& tag);

// An expensive fixture (a trained model, generated videos) made once per build and shared by every
// test process (ctest runs each test in a process of its own): BUILD/test-cache/<stamp>/<name>,
// filled by make(dir) in a staging directory that is renamed into place, one maker at a time (a
// lock file). The stamp is the build of the test executable, the tools and the plugin: a rebuild
// makes the fixtures again. Tests must only read what is there.
std::string cached_dir(const std::string& name, const std::function<void(const std::string& dir)>& make);
// The same for one file of a shared directory: BUILD/test-cache/<stamp>/<group>/<name>, made by
// make(path) at a temporary path that is then renamed to it.
std::string cached_file(const std::string& group, const std::string& name,
                        const std::function<void(const std::string& path)>& make);

// Path of a built executable (clipcap-infer, ...).
std::string tool(const std::string& name);

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs a shell command line with stdin from /dev/null, capturing stdout and stderr.
RunResult run(const std::string& command_line);

// The message of the clipcap::Error fn throws; a test failure if it throws nothing or anything else.
template <typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const ::clipcap::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "a non-clipcap exception escaped: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

// Expects a one-line clipcap::Error whose message contains every one of parts.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  const std::string msg = error_message(fn);
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
}

::testing::AssertionResult tensors_near(const torch::Tensor& got, const torch::Tensor& want, double abs_tol);
::testing::AssertionResult tensors_equal(const torch::Tensor& got, const torch::Tensor& want);

}  // namespace clipcap::test

#define EXPECT_TENSOR_NEAR(got, want, tol) EXPECT_TRUE(::clipcap::test::tensors_near((got), (want), (tol)))
#define EXPECT_TENSOR_EQ(got, want) EXPECT_TRUE(::clipcap::test::tensors_equal((got), (want)))
