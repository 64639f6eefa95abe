// torch.save checkpoint reader: the fixtures' pytorch_model.bin / model.pt against their
// safetensors twins, views over shared storages, ZIP64, and hostile or broken archives.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "model/weights/safetensors.h"
#include "model/weights/torch_checkpoint.h"
#include "model/weights/weight_source.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using clipcap::test::fixture;

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }

// ---- a minimal STORED zip writer (CRCs left 0: the reader does not check them) ----

void put16(std::string& s, uint16_t v) { s.push_back(char(v & 0xFF)), s.push_back(char(v >> 8)); }
void put32(std::string& s, uint32_t v) { put16(s, uint16_t(v & 0xFFFF)), put16(s, uint16_t(v >> 16)); }
void put64(std::string& s, uint64_t v) { put32(s, uint32_t(v)), put32(s, uint32_t(v >> 32)); }

struct ZipOptions {
  bool zip64 = false;   // saturate the 32-bit fields and write ZIP64 records, like miniz for > 4 GiB
  uint16_t method = 0;  // 8 = deflate (the data is not really compressed; the reader must refuse it)
};

std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries, ZipOptions opt = {}) {
  std::string out, cd;
  for (const auto& [name, data] : entries) {
    const uint64_t offset = out.size();
    put32(out, 0x04034b50), put16(out, 45), put16(out, 0), put16(out, opt.method), put32(out, 0), put32(out, 0);
    put32(out, uint32_t(data.size())), put32(out, uint32_t(data.size()));
    put16(out, uint16_t(name.size())), put16(out, 3);  // 3 bytes of padding in the extra field, like torch
    out += name + std::string("\xAA\xBB\xCC", 3) + data;

    std::string extra;
    if (opt.zip64) put16(extra, 1), put16(extra, 24), put64(extra, data.size()), put64(extra, data.size()), put64(extra, offset);
    put32(cd, 0x02014b50), put16(cd, 45), put16(cd, 45), put16(cd, 0), put16(cd, opt.method), put32(cd, 0), put32(cd, 0);
    put32(cd, opt.zip64 ? 0xFFFFFFFF : uint32_t(data.size())), put32(cd, opt.zip64 ? 0xFFFFFFFF : uint32_t(data.size()));
    put16(cd, uint16_t(name.size())), put16(cd, uint16_t(extra.size())), put16(cd, 0), put16(cd, 0), put16(cd, 0);
    put32(cd, 0), put32(cd, opt.zip64 ? 0xFFFFFFFF : uint32_t(offset));
    cd += name + extra;
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  if (opt.zip64) {
    const uint64_t rec = out.size();
    put32(out, 0x06064b50), put64(out, 44), put16(out, 45), put16(out, 45), put32(out, 0), put32(out, 0);
    put64(out, entries.size()), put64(out, entries.size()), put64(out, cd.size()), put64(out, cd_offset);
    put32(out, 0x07064b50), put32(out, 0), put64(out, rec), put32(out, 1);
  }
  put32(out, 0x06054b50), put16(out, 0), put16(out, 0);
  put16(out, opt.zip64 ? 0xFFFF : uint16_t(entries.size())), put16(out, opt.zip64 ? 0xFFFF : uint16_t(entries.size()));
  put32(out, opt.zip64 ? 0xFFFFFFFF : uint32_t(cd.size())), put32(out, opt.zip64 ? 0xFFFFFFFF : uint32_t(cd_offset));
  put16(out, 0);
  return out;
}

// ---- a pickle writer for state_dicts, opcode by opcode as torch.save emits them ----

struct Pickle {
  std::string b;
  Pickle& op(char c) { return b.push_back(c), *this; }
  Pickle& str(const std::string& s) { return op('X'), put32(b, uint32_t(s.size())), b += s, *this; }
  Pickle& num(int32_t i) { return op('J'), put32(b, uint32_t(i)), *this; }
  Pickle& global(const std::string& module, const std::string& name) { return op('c'), b += module + "\n" + name + "\n", *this; }
  Pickle& ints(const std::vector<int64_t>& v) {
    op('(');
    for (auto x : v) num(int32_t(x));
    return op('t');
  }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
};

struct TensorSpec {
  std::string name, storage_type, key;
  int64_t storage_numel, offset;
  std::vector<int64_t> size, stride;
};

void tensor(Pickle& p, const TensorSpec& t) {
  p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').str("storage").global("torch", t.storage_type).str(t.key).str("cpu").num(int32_t(t.storage_numel)).op('t').op('Q');
  p.num(int32_t(t.offset)).ints(t.size).ints(t.stride).op('\x89').ordered_dict().op('t').op('R');
  p.op('s');
}

std::string state_dict_pickle(const std::vector<TensorSpec>& ts) {
  Pickle p;
  p.op('\x80').op('\x02').ordered_dict();
  for (const auto& t : ts) tensor(p, t);
  // state_dict() then sets _metadata through BUILD; the reader ignores it.
  p.op('}').str("_metadata").ordered_dict().op('s').op('b');
  return p.op('.').b;
}

std::string bytes_of(const torch::Tensor& t) {
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

// Storage "0": float 0..11; "1": half [0.5, -2, 3]; "2": bool [1,0,1,1].
std::vector<TensorSpec> sample_specs() {
  return {
      {"matrix", "FloatStorage", "0", 12, 0, {3, 4}, {4, 1}},
      {"transposed", "FloatStorage", "0", 12, 0, {4, 3}, {1, 4}},
      {"column", "FloatStorage", "0", 12, 1, {3}, {4}},
      {"scalar", "FloatStorage", "0", 12, 5, {}, {}},
      {"empty", "FloatStorage", "0", 12, 0, {0, 4}, {4, 1}},
      {"half", "HalfStorage", "1", 3, 0, {3}, {1}},
      {"mask", "BoolStorage", "2", 4, 0, {2, 2}, {2, 1}},
  };
}

std::vector<std::pair<std::string, std::string>> sample_entries(const std::string& dir, const std::string& pickle) {
  return {{dir + "/data.pkl", pickle},
          {dir + "/data/0", bytes_of(torch::arange(12, torch::kFloat32))},
          {dir + "/data/1", bytes_of(torch::tensor({0.5, -2.0, 3.0}, torch::kFloat16))},
          {dir + "/data/2", bytes_of(torch::tensor({true, false, true, true}))},
          {dir + "/version", "3\n"}};
}

std::string write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir + "/" + name;
  clipcap::write_file_atomic(path, bytes);
  return path;
}

// Opening (and loading every tensor) must throw clipcap::Error naming the file and saying `problem`.
void expect_rejected(const std::string& path, const std::string& problem) {
  try {
    auto ckpt = clipcap::open_torch_checkpoint(path);
    for (const auto& n : ckpt->names()) ckpt->load(n);
    ADD_FAILURE() << path << ": loaded without error";
  } catch (const clipcap::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << "expected '" << problem << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

void check_sample(const clipcap::WeightSource& ckpt) {
  const std::vector<std::string> want_names = {"matrix", "transposed", "column", "scalar", "empty", "half", "mask"};
  EXPECT_EQ(ckpt.names(), want_names);
  auto m = torch::arange(12, torch::kFloat32).view({3, 4});
  EXPECT_TENSOR_EQ(ckpt.load("matrix"), m);
  EXPECT_TENSOR_EQ(ckpt.load("transposed"), m.t().contiguous());
  EXPECT_TRUE(ckpt.load("transposed").is_contiguous());
  EXPECT_TENSOR_EQ(ckpt.load("column"), m.select(1, 1).contiguous());
  EXPECT_EQ(ckpt.shape("scalar"), std::vector<int64_t>{});
  EXPECT_TENSOR_EQ(ckpt.load("scalar"), torch::scalar_tensor(5.0f));
  EXPECT_EQ(ckpt.load("empty").sizes().vec(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(ckpt.load("half").scalar_type(), torch::kFloat16);
  EXPECT_TENSOR_EQ(ckpt.load("half", torch::kFloat32), torch::tensor({0.5f, -2.0f, 3.0f}));
  EXPECT_TENSOR_EQ(ckpt.load("mask"), torch::tensor({true, false, true, true}).view({2, 2}));
}

}  // namespace

TEST(TorchCheckpoint, TinyClipBinIsBitIdenticalToSafetensors) {
  clipcap::SafetensorsFile st(fixture("tiny-clip/model.safetensors"));
  auto bin = clipcap::open_torch_checkpoint(fixture("tiny-clip/pytorch_model.bin"));
  EXPECT_EQ(bin->path(), fixture("tiny-clip/pytorch_model.bin"));
  ASSERT_FALSE(st.names().empty());
  for (const auto& name : st.names()) {
    ASSERT_TRUE(bin->contains(name)) << name;
    EXPECT_EQ(bin->shape(name), st.shape(name)) << name;
    EXPECT_TENSOR_EQ(bin->load(name), st.load(name));
    EXPECT_TENSOR_EQ(bin->load(name, torch::kBFloat16), st.load(name, torch::kBFloat16));
  }
  // Everything else in the .bin is the int64 position_ids buffers transformers < 4.31 saved.
  int position_ids = 0;
  for (const auto& name : bin->names()) {
    if (st.contains(name)) continue;
    ASSERT_TRUE(ends_with(name, "position_ids")) << name;
    torch::Tensor ids = bin->load(name);
    EXPECT_EQ(ids.scalar_type(), torch::kInt64);
    EXPECT_TENSOR_EQ(ids, torch::arange(ids.numel(), torch::kInt64).view(bin->shape(name)));
    ++position_ids;
  }
  EXPECT_EQ(position_ids, 2);
  EXPECT_EQ(bin->names().size(), st.names().size() + 2);
}

TEST(TorchCheckpoint, OpenWeightsDispatchesOnContent) {
  auto w = clipcap::open_weights(fixture("tiny-clip/pytorch_model.bin"));
  EXPECT_TRUE(w->contains("text_model.embeddings.position_ids"));
  auto s = clipcap::open_weights(fixture("tiny-clip/model.safetensors"));
  EXPECT_FALSE(s->contains("text_model.embeddings.position_ids"));
}

TEST(TorchCheckpoint, UpstreamLegacyModelPtHasTheUpstreamLayout) {
  auto pt = clipcap::open_torch_checkpoint(fixture("upstream-legacy/model.pt"));
  clipcap::SafetensorsFile clip(fixture("tiny-clip/model.safetensors"));
  clipcap::SafetensorsFile gpt2(fixture("tiny-gpt2/model.safetensors"));
  const auto cfg = clipcap::read_json(fixture("upstream-legacy/upstream_config.json"));
  const int64_t mapper_layers = clipcap::json_require<int64_t>(cfg, "num_layers", "upstream_config.json");
  const int64_t gpt2_layers = clipcap::json_require<int64_t>(
      clipcap::read_json(fixture("tiny-gpt2/config.json")), "n_layer", "tiny-gpt2/config.json");

  size_t vision = 0, decoder = 0, mapper = 0;
  for (const auto& name : pt->names()) {
    if (starts_with(name, "ie.model.")) {
      ++vision;
      const std::string hf = "vision_model." + name.substr(9);
      if (ends_with(name, "position_ids")) continue;
      ASSERT_TRUE(clip.contains(hf)) << name;
      EXPECT_TENSOR_EQ(pt->load(name), clip.load(hf));
    } else if (starts_with(name, "td.model.transformer.")) {
      ++decoder;
      const std::string hf = name.substr(21);
      if (ends_with(name, "attn.masked_bias")) {
        EXPECT_TENSOR_EQ(pt->load(name), torch::scalar_tensor(-1e4f));  // 0-dim buffer
        continue;
      }
      ASSERT_TRUE(gpt2.contains(hf)) << name;
      if (ends_with(name, ".attn.bias")) {  // stored as bool here, as float in the safetensors
        EXPECT_EQ(pt->load(name).scalar_type(), torch::kBool);
        EXPECT_TENSOR_EQ(pt->load(name).to(torch::kFloat32), gpt2.load(hf));
        continue;
      }
      EXPECT_TENSOR_EQ(pt->load(name), gpt2.load(hf));
    } else if (starts_with(name, "mp.")) {
      ++mapper;
    } else {
      EXPECT_EQ(name, "td.model.lm_head.weight");
    }
  }
  const auto clip_names = clip.names();
  const size_t clip_vision =
      std::count_if(clip_names.begin(), clip_names.end(), [](const std::string& n) { return starts_with(n, "vision_model."); });
  EXPECT_EQ(vision, clip_vision + 1);                      // + position_ids
  EXPECT_EQ(decoder, gpt2.names().size() + gpt2_layers);  // + masked_bias per layer
  EXPECT_EQ(mapper, 12 * mapper_layers + 2);               // 12 per TransformerEncoderLayer + mapper.{weight,bias}
  EXPECT_EQ(pt->names().size(), vision + decoder + mapper + 1);
  // The tied lm_head shares wte's storage in the pickle: both load to the same values.
  EXPECT_TENSOR_EQ(pt->load("td.model.lm_head.weight"), pt->load("td.model.transformer.wte.weight"));
  EXPECT_TENSOR_EQ(pt->load("td.model.lm_head.weight", torch::kFloat32), gpt2.load("wte.weight"));
}

TEST(TorchCheckpoint, PublicLegacyFixtureHas99Keys) {
  auto manifest = clipcap::read_json(fixture("manifest.json"));
  if (manifest.value("variant", "") != "public") GTEST_SKIP() << "held-out fixtures: count derived above";
  EXPECT_EQ(clipcap::open_torch_checkpoint(fixture("upstream-legacy/model.pt"))->names().size(), 99u);
}

TEST(TorchCheckpoint, NonFloatToFloatAndMissingTensorsAreErrors) {
  const std::string path = fixture("tiny-clip/pytorch_model.bin");
  auto bin = clipcap::open_torch_checkpoint(path);
  try {
    bin->load("text_model.embeddings.position_ids", torch::kFloat32);
    ADD_FAILURE() << "int64 loaded as float";
  } catch (const clipcap::Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor 'text_model.embeddings.position_ids': unsupported dtype Long "
                                            "where Float weights are expected");
  }
  EXPECT_EQ(bin->load("text_model.embeddings.position_ids", torch::kInt64).scalar_type(), torch::kInt64);
  try {
    bin->load("no.such.weight");
    ADD_FAILURE() << "missing tensor loaded";
  } catch (const clipcap::Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": missing tensor 'no.such.weight'");
  }
  EXPECT_THROW(bin->shape("no.such.weight"), clipcap::Error);
}

TEST(TorchCheckpoint, ViewsOverSharedStoragesScalarsHalfAndBool) {
  const std::string dir = clipcap::test::temp_dir("ckpt");
  for (const std::string top : {"archive", "my-model"}) {
    const std::string path = write(dir, top + ".pt", make_zip(sample_entries(top, state_dict_pickle(sample_specs()))));
    SCOPED_TRACE(path);
    check_sample(*clipcap::open_torch_checkpoint(path));
  }
}

TEST(TorchCheckpoint, Zip64ArchivesLoad) {
  const std::string dir = clipcap::test::temp_dir("ckpt");
  ZipOptions opt;
  opt.zip64 = true;
  const std::string path = write(dir, "zip64.pt", make_zip(sample_entries("archive", state_dict_pickle(sample_specs())), opt));
  check_sample(*clipcap::open_torch_checkpoint(path));
}

TEST(TorchCheckpoint, TrainingCheckpointWithStateDictKey) {
  // {"epoch": 3, "state_dict": OrderedDict(...)}
  Pickle p;
  p.op('\x80').op('\x02').op('}').str("epoch").num(3).op('s').str("state_dict").ordered_dict();
  for (const auto& t : sample_specs()) tensor(p, t);
  p.op('s').op('.');
  const std::string dir = clipcap::test::temp_dir("ckpt");
  const std::string path = write(dir, "train.pt", make_zip(sample_entries("archive", p.b)));
  check_sample(*clipcap::open_torch_checkpoint(path));
}

TEST(TorchCheckpoint, RefusesForeignGlobalsAndOpcodes) {
  const std::string dir = clipcap::test::temp_dir("ckpt");
  {  // the classic: os.system("...") via GLOBAL + REDUCE
    Pickle p;
    p.op('\x80').op('\x02').global("os", "system").op('(').str("touch pwned").op('t').op('R').op('.');
    const std::string path = write(dir, "evil.pt", make_zip({{"evil/data.pkl", p.b}}));
    expect_rejected(path, "refusing to load: pickle uses global os.system");
  }
  {  // a torch global that is not a state_dict building block
    Pickle p;
    p.op('\x80').op('\x02').global("torch", "load").op('.');
    expect_rejected(write(dir, "evil2.pt", make_zip({{"evil/data.pkl", p.b}})), "global torch.load");
  }
  {  // NEWOBJ builds an arbitrary object
    Pickle p;
    p.op('\x80').op('\x02').global("collections", "OrderedDict").op(')').op('\x81').op('.');
    expect_rejected(write(dir, "evil3.pt", make_zip({{"evil/data.pkl", p.b}})), "opcode 0x81 (NEWOBJ)");
  }
}

TEST(TorchCheckpoint, BrokenArchivesAreErrorsNamingTheFile) {
  const std::string dir = clipcap::test::temp_dir("ckpt");
  const std::string good = make_zip(sample_entries("archive", state_dict_pickle(sample_specs())));

  expect_rejected(write(dir, "notzip.bin", std::string(1000, 'x')), "not a zip archive");
  expect_rejected(write(dir, "empty.bin", ""), "not a zip archive");
  expect_rejected(write(dir, "nopkl.bin", make_zip({{"archive/data/0", "abcd"}})), "no <dir>/data.pkl");
  ZipOptions deflate;
  deflate.method = 8;
  expect_rejected(write(dir, "deflated.bin", make_zip(sample_entries("archive", state_dict_pickle(sample_specs())), deflate)),
                  "is compressed (method 8)");
  expect_rejected(dir, "is a directory");
  expect_rejected(dir + "/does-not-exist.pt", "cannot open");

  auto specs = sample_specs();
  specs[0].key = "9";  // no archive/data/9
  expect_rejected(write(dir, "nostorage.bin", make_zip(sample_entries("archive", state_dict_pickle(specs)))),
                  "tensor 'matrix': its storage archive/data/9 is missing");
  specs = sample_specs();
  specs[0].offset = 1;  // 12 elements from offset 1 of a 12-element storage
  expect_rejected(write(dir, "overrun.bin", make_zip(sample_entries("archive", state_dict_pickle(specs)))),
                  "tensor 'matrix': size [3, 4], stride [4, 1] at offset 1 reaches past its storage of 12 elements");
  specs = sample_specs();
  specs[0].stride = {0, 0};  // expanded: 12 elements from 1
  specs[0].size = {4, 4};
  expect_rejected(write(dir, "expanded.bin", make_zip(sample_entries("archive", state_dict_pickle(specs)))),
                  "tensor 'matrix': size [4, 4] has more elements than its storage of 12");
  specs = sample_specs();
  specs[5].storage_numel = 4;  // the half storage entry has 6 bytes, not 8
  expect_rejected(write(dir, "badnumel.bin", make_zip(sample_entries("archive", state_dict_pickle(specs)))),
                  "tensor 'half': storage 1 has 6 bytes");

  // Found by tests/fuzz/fuzz_torch_checkpoint: a central directory that claims an entry of 2^62
  // bytes (ZIP64) was allocated before its bounds were checked (a hang, or std::length_error).
  ZipOptions zip64;
  zip64.zip64 = true;
  std::string huge = make_zip(sample_entries("archive", state_dict_pickle(sample_specs())), zip64);
  const size_t cd_name = huge.rfind("archive/data.pkl");  // the central directory's copy comes last
  ASSERT_NE(cd_name, std::string::npos);
  for (size_t field : {cd_name + 16 + 4, cd_name + 16 + 12})  // the ZIP64 extra: size, compressed size
    for (int b = 0; b < 8; ++b) huge[field + b] = b == 7 ? '\x40' : '\0';
  expect_rejected(write(dir, "huge-entry.bin", huge), "data runs past the end of the file");

  // Every truncation of a real checkpoint is an error, never a crash.
  const std::string real = clipcap::read_file(fixture("tiny-clip/pytorch_model.bin"));
  for (size_t keep : {size_t(0), size_t(4), size_t(100), real.size() / 2, real.size() - 23, real.size() - 1}) {
    SCOPED_TRACE(keep);
    expect_rejected(write(dir, "truncated.bin", real.substr(0, keep)), "truncated");
  }
}

TEST(TorchCheckpoint, EveryTruncatedOrMutatedPickleFailsCleanly) {
  // A pickle cut anywhere, or with any byte changed, either loads or throws clipcap::Error naming the
  // file: no other exception, no crash.
  const std::string pickle = state_dict_pickle(sample_specs());
  // ~3000 archives: an in-memory file, because truncating a disk file thousands of times is slow.
  const int fd = memfd_create("fuzz.pt", 0);
  ASSERT_GE(fd, 0);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto entries = sample_entries("archive", pickle);
  auto attempt = [&](const std::string& pkl) {
    entries[0].second = pkl;
    const std::string zip = make_zip(entries);
    ASSERT_EQ(ftruncate(fd, 0), 0);
    ASSERT_EQ(pwrite(fd, zip.data(), zip.size(), 0), ssize_t(zip.size()));
    try {
      auto ckpt = clipcap::open_torch_checkpoint(path);
      for (const auto& n : ckpt->names()) ckpt->load(n, torch::kFloat32);
    } catch (const clipcap::Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << e.what();
    }
  };
  for (size_t n = 0; n < pickle.size(); ++n) {
    attempt(pickle.substr(0, n));
    for (unsigned char v : {0x00, 0x29, 0x7f, 0xff}) {
      std::string m = pickle;
      m[n] = static_cast<char>(v);
      attempt(m);
    }
  }
  close(fd);
}
