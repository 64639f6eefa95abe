// safetensors reader and writer: round trips, the fixtures' headers (padded and unpadded), every
// kind of corrupt header, and the atomic writer.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/weights/safetensors.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using clipcap::test::fixture;

namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

// A safetensors file from a raw header string and data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i)));
  return out + header + data;
}

uint64_t header_length(const std::string& path) {
  std::string bytes = clipcap::read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes.at(i));
  return n;
}

// `action` must throw clipcap::Error whose one-line message names `path` and contains `problem`.
template <typename F>
void expect_error(F&& action, const std::string& path, const std::string& problem) {
  try {
    action();
    ADD_FAILURE() << "no error for " << path << " (expected '" << problem << "')";
  } catch (const clipcap::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << "expected '" << problem << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

void expect_open_error(const std::string& path, const std::string& problem) {
  expect_error([&] { clipcap::SafetensorsFile f(path); }, path, problem);
}

clipcap::NamedTensors sample_tensors() {
  return {
      {"f32", torch::arange(6, torch::kFloat32).view({2, 3}) / 7},
      {"bf16", torch::tensor({1.5f, -2.25f, 1e30f, 0.1f}).to(torch::kBFloat16)},
      {"f16", torch::tensor({0.5f, -65504.0f}).to(torch::kFloat16)},
      {"i64", torch::tensor({int64_t(1) << 40, int64_t(-3), int64_t(7)})},
      {"u8", torch::tensor({0, 255, 17, 128}, torch::kUInt8).view({2, 2})},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::scalar_tensor(3.25f)},
      {"empty", torch::empty({0, 5}, torch::kFloat32)},
      {"transposed", torch::arange(6, torch::kFloat32).view({2, 3}).t()},  // not contiguous
  };
}

}  // namespace

TEST(Safetensors, RoundTripKeepsDtypesShapesAndValues) {
  const std::string path = clipcap::test::temp_dir("st") + "/round.safetensors";
  const auto tensors = sample_tensors();
  clipcap::save_safetensors(path, tensors);

  clipcap::SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  std::vector<std::string> sorted;
  for (const auto& [name, t] : tensors) sorted.push_back(name);
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(f.names(), sorted);  // sorted by name = by offset, like the Rust writer
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f.contains(name));
    EXPECT_EQ(f.shape(name), t.sizes().vec());
    torch::Tensor got = f.load(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type());
    EXPECT_TENSOR_EQ(got, t);
  }
  EXPECT_EQ(f.entry("bf16").dtype, "BF16");
  EXPECT_EQ(f.entry("i64").dtype, "I64");
  EXPECT_EQ(f.entry("u8").dtype, "U8");
  EXPECT_EQ(f.entry("bool").dtype, "BOOL");
  EXPECT_EQ(f.entry("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(f.entry("empty").begin, f.entry("empty").end);

  auto all = clipcap::load_safetensors(path, torch::kFloat32);
  EXPECT_EQ(all.size(), tensors.size());
  EXPECT_EQ(all.at("bf16").scalar_type(), torch::kFloat32);  // floats converted
  EXPECT_EQ(all.at("i64").scalar_type(), torch::kInt64);     // others kept
  EXPECT_EQ(all.at("bool").scalar_type(), torch::kBool);
}

TEST(Safetensors, FloatDtypesConvertOthersAreRefused) {
  const std::string path = clipcap::test::temp_dir("st") + "/conv.safetensors";
  const auto tensors = sample_tensors();
  clipcap::save_safetensors(path, tensors);
  clipcap::SafetensorsFile f(path);
  EXPECT_TENSOR_EQ(f.load("bf16", torch::kFloat32), tensors[1].second.to(torch::kFloat32));
  EXPECT_TENSOR_EQ(f.load("f32", torch::kBFloat16), tensors[0].second.to(torch::kBFloat16));
  EXPECT_TENSOR_EQ(f.load("f16", torch::kFloat32), tensors[2].second.to(torch::kFloat32));
  EXPECT_EQ(f.load("i64", torch::kInt64).scalar_type(), torch::kInt64);  // asking for the stored dtype is fine
  expect_error([&] { f.load("i64", torch::kFloat32); }, path,
               "tensor 'i64': unsupported dtype I64 where Float weights are expected");
  expect_error([&] { f.load("bool", torch::kFloat16); }, path, "tensor 'bool': unsupported dtype BOOL");
  expect_error([&] { f.load("nope"); }, path, "missing tensor 'nope'");
  expect_error([&] { f.shape("nope"); }, path, "missing tensor 'nope'");
}

TEST(Safetensors, WriterPadsHeaderToEightBytes) {
  const std::string dir = clipcap::test::temp_dir("st");
  // Names of different lengths move the unpadded header end through every residue mod 8.
  for (int len = 1; len <= 8; ++len) {
    const std::string path = dir + "/pad" + std::to_string(len) + ".safetensors";
    clipcap::save_safetensors(path, {{std::string(len, 'w'), torch::ones({3})}});
    EXPECT_EQ(header_length(path) % 8, 0u) << path;
    EXPECT_TENSOR_EQ(clipcap::SafetensorsFile(path).load(std::string(len, 'w')), torch::ones({3}));
  }
}

TEST(Safetensors, FixtureWithUnalignedHeaderLoads) {
  // tiny-gpt2/model.safetensors has an unpadded header, like the hub's gpt2 file; its twin
  // model_prefixed.safetensors holds the same weights under "transformer.".
  const std::string path = fixture("tiny-gpt2/model.safetensors");
  clipcap::SafetensorsFile plain(path);
  clipcap::SafetensorsFile prefixed(fixture("tiny-gpt2/model_prefixed.safetensors"));
  ASSERT_TRUE(plain.contains("wte.weight"));
  int compared = 0;
  for (const auto& name : plain.names()) {
    if (!prefixed.contains("transformer." + name)) continue;
    EXPECT_TENSOR_EQ(plain.load(name), prefixed.load("transformer." + name));
    ++compared;
  }
  EXPECT_GT(compared, 0);
  EXPECT_TENSOR_EQ(plain.load("wte.weight"), prefixed.load("lm_head.weight"));
  // The CLIP fixture's header is padded; it loads the same way.
  EXPECT_EQ(header_length(fixture("tiny-clip/model.safetensors")) % 8, 0u);
  EXPECT_FALSE(clipcap::load_safetensors(fixture("tiny-clip/model.safetensors")).empty());
}

TEST(Safetensors, CorruptFilesAreErrorsNamingFileAndProblem) {
  const std::string dir = clipcap::test::temp_dir("st");
  const std::string good_path = dir + "/good.safetensors";
  clipcap::save_safetensors(good_path, sample_tensors());
  const std::string good = clipcap::read_file(good_path);
  const std::string f8 = std::string(4, '\0');

  expect_open_error(write(dir, "empty.safetensors", ""), "not a safetensors file (only 0 bytes)");
  expect_open_error(dir, "is a directory");
  expect_open_error(dir + "/missing.safetensors", "cannot open");
  expect_open_error(write(dir, "cut_data.safetensors", good.substr(0, good.size() - 4)),
                    "data_offsets run past the end of the file (truncated file?)");
  expect_open_error(write(dir, "cut_header.safetensors", good.substr(0, 40)), "corrupt safetensors header length");
  expect_open_error(write(dir, "huge_len.safetensors", safetensors_bytes("{}", "").replace(0, 1, "\x40")),
                    "corrupt safetensors header length 64 (file has 10 bytes)");
  expect_open_error(write(dir, "not_json.safetensors", safetensors_bytes("{\"a\": [1, 2", "")),
                    "safetensors header is not valid JSON");
  expect_open_error(write(dir, "not_object.safetensors", safetensors_bytes("[1, 2]", "")),
                    "safetensors header is not a JSON object");
  expect_open_error(
      write(dir, "hole.safetensors",
            safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                              std::string(12, '\0'))),
      "tensor 'b': data_offsets are not contiguous (starts at 8, expected 4)");
  expect_open_error(write(dir, "size.safetensors",
                          safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", f8)),
                    "tensor 'a': 4 bytes stored but F32 [2] needs 8");
  expect_open_error(write(dir, "unknown.safetensors",
                          safetensors_bytes(R"({"a":{"dtype":"F7","shape":[4],"data_offsets":[0,4]}})", f8)),
                    "tensor 'a': unknown dtype F7");
  expect_open_error(write(dir, "noshape.safetensors", safetensors_bytes(R"({"a":{"dtype":"F32"}})", "")),
                    "tensor 'a': header entry needs dtype, shape and data_offsets");
  expect_open_error(write(dir, "negative.safetensors",
                          safetensors_bytes(R"({"a":{"dtype":"U8","shape":[-4],"data_offsets":[0,4]}})", f8)),
                    "tensor 'a': shape has a non-integer or negative size");
  expect_open_error(write(dir, "trailing.safetensors",
                          safetensors_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", f8)),
                    "file has 2 bytes after the last tensor");

  // A dtype the format knows but we cannot compute with: the file opens, that tensor does not load.
  const std::string fp8 = write(dir, "fp8.safetensors",
                                safetensors_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]},)"
                                                  R"("ok":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                                                  f8 + f8));
  clipcap::SafetensorsFile f(fp8);
  EXPECT_EQ(f.shape("w"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(f.load("ok").numel(), 4);
  expect_error([&] { f.load("w"); }, fp8, "tensor 'w': unsupported dtype F8_E4M3");
}

TEST(Safetensors, AtomicWriterNeverLeavesAPartialFile) {
  const std::string dir = clipcap::test::temp_dir("st");
  expect_error([&] { clipcap::save_safetensors(dir + "/no/such/dir/x.safetensors", sample_tensors()); },
               dir + "/no/such/dir/x.safetensors", "cannot create file");

  // Make the write itself fail halfway (file size limit), over an existing good file.
  const std::string path = dir + "/model.safetensors";
  clipcap::save_safetensors(path, {{"old", torch::ones({2})}});
  const std::string before = clipcap::read_file(path);
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing us
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    clipcap::save_safetensors(path, {{"big", torch::zeros({1 << 20})}});  // 4 MB
  } catch (const clipcap::Error& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_EQ(clipcap::read_file(path), before);  // the old file is untouched
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"model.safetensors"});  // and no temporary file remains

  // Names that cannot be stored fail before anything is written, naming the file.
  expect_error([&] { clipcap::save_safetensors(dir + "/dup.safetensors", {{"a", torch::ones(1)}, {"a", torch::ones(1)}}); },
               dir + "/dup.safetensors", "duplicate tensor name 'a'");
  EXPECT_FALSE(fs::exists(dir + "/dup.safetensors"));
  expect_error([&] { clipcap::save_safetensors(dir + "/complex.safetensors", {{"c", torch::zeros({2}, torch::kComplexFloat)}}); },
               dir + "/complex.safetensors", "tensor 'c': cannot store dtype ComplexFloat");
  EXPECT_FALSE(fs::exists(dir + "/complex.safetensors"));
}
