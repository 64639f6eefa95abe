#include "model/tokenizers/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "common/error.h"
#include "model/tokenizers/plugins/spm_plugin_abi.h"

namespace clipcap {
namespace {

namespace fs = std::filesystem;

struct SpmPlugin {
  std::string path;
  decltype(&clipcap_spm_load) load = nullptr;
  decltype(&clipcap_spm_free) free_model = nullptr;
  decltype(&clipcap_spm_get_info) get_info = nullptr;
  decltype(&clipcap_spm_encode) encode = nullptr;
  decltype(&clipcap_spm_decode) decode = nullptr;
  decltype(&clipcap_spm_free_buffer) free_buffer = nullptr;
  decltype(&clipcap_spm_train) train = nullptr;
};

std::string executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::vector<std::string> plugin_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("CLIPCAP_SPM_PLUGIN"); env && *env) {
    out.emplace_back(env);
    return out;  // an explicit choice is not second-guessed
  }
  std::string dir = executable_dir();
  if (!dir.empty()) {
    out.push_back(dir + "/" CLIPCAP_SPM_PLUGIN_NAME);
    out.push_back(dir + "/../lib/" CLIPCAP_SPM_PLUGIN_NAME);
    out.push_back(dir + "/../" CLIPCAP_SPM_PLUGIN_NAME);  // build root, seen from build/tests/
  }
  return out;
}

template <typename Fn>
void bind(void* handle, const std::string& path, const char* name, Fn* fn) {
  void* sym = dlsym(handle, name);
  if (!sym) throw Error(path + ": SentencePiece plugin lacks symbol '" + name + "'");
  *fn = reinterpret_cast<Fn>(sym);
}

const SpmPlugin& plugin() {
  static std::mutex mutex;
  static std::unique_ptr<SpmPlugin> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  if (loaded) return *loaded;
  std::string path = sentencepiece_plugin_path();
  // DEEPBIND: the plugin's own protobuf symbols win over libtorch's already-loaded libprotobuf.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!handle) throw Error(path + ": cannot load the SentencePiece plugin (" + dlerror() + ")");
  auto p = std::make_unique<SpmPlugin>();
  p->path = path;
  int (*abi_version)() = nullptr;
  bind(handle, path, "clipcap_spm_abi_version", &abi_version);
  if (abi_version() != CLIPCAP_SPM_ABI_VERSION)
    throw Error(path + ": SentencePiece plugin ABI version " + std::to_string(abi_version()) + ", expected " +
                std::to_string(CLIPCAP_SPM_ABI_VERSION) + " (rebuild it with this clipcap)");
  bind(handle, path, "clipcap_spm_load", &p->load);
  bind(handle, path, "clipcap_spm_free", &p->free_model);
  bind(handle, path, "clipcap_spm_get_info", &p->get_info);
  bind(handle, path, "clipcap_spm_encode", &p->encode);
  bind(handle, path, "clipcap_spm_decode", &p->decode);
  bind(handle, path, "clipcap_spm_free_buffer", &p->free_buffer);
  bind(handle, path, "clipcap_spm_train", &p->train);
  loaded = std::move(p);  // the handle stays open for the life of the process
  return *loaded;
}

std::string format_double(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

std::string sentencepiece_plugin_path() {
  std::vector<std::string> tried = plugin_candidates();
  for (const std::string& c : tried)
    if (fs::is_regular_file(c)) return fs::path(c).lexically_normal().string();
  std::string list;
  for (const std::string& c : tried) list += (list.empty() ? "" : ", ") + c;
  if (tried.size() == 1 && std::getenv("CLIPCAP_SPM_PLUGIN"))
    throw Error(tried[0] + ": SentencePiece plugin named by $CLIPCAP_SPM_PLUGIN does not exist");
  throw Error(std::string(CLIPCAP_SPM_PLUGIN_NAME) + ": SentencePiece plugin not found (tried " + list +
              "; set $CLIPCAP_SPM_PLUGIN)");
}

void train_sentencepiece(const SentencePieceTrainOptions& opts) {
  if (opts.model_prefix.empty()) throw Error("sentencepiece training: model_prefix is empty");
  if (!fs::is_regular_file(opts.input)) throw Error(opts.input + ": training text file not found");
  fs::path parent = fs::path(opts.model_prefix).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw Error(opts.model_prefix + ": output directory " + parent.string() + " does not exist");
  const SpmPlugin& p = plugin();

  const std::string partial = opts.model_prefix + ".partial";
  std::map<std::string, std::string> flags = {
      {"input", opts.input},
      {"model_prefix", partial},
      {"vocab_size", std::to_string(opts.vocab_size)},
      {"model_type", opts.model_type},
      {"character_coverage", format_double(opts.character_coverage)},
      {"unk_id", std::to_string(opts.unk_id)},
      {"bos_id", std::to_string(opts.bos_id)},
      {"eos_id", std::to_string(opts.eos_id)},
      {"pad_id", std::to_string(opts.pad_id)},
  };
  if (opts.quiet) flags["minloglevel"] = "2";
  if (!opts.user_defined_symbols.empty()) {
    std::string joined;
    for (const std::string& s : opts.user_defined_symbols) {
      if (s.empty() || s.find(',') != std::string::npos)
        throw Error(opts.model_prefix + ": user-defined symbol '" + s + "' is empty or contains ','");
      joined += (joined.empty() ? "" : ",") + s;
    }
    flags["user_defined_symbols"] = joined;
  }
  for (const auto& [k, v] : opts.extra) flags[k] = v;

  std::vector<const char*> keys, values;
  for (const auto& [k, v] : flags) keys.push_back(k.c_str()), values.push_back(v.c_str());
  char err[1024] = {0};
  int rc = p.train(keys.data(), values.data(), keys.size(), err, sizeof err);
  std::error_code ec;
  if (rc != 0) {
    fs::remove(partial + ".model", ec);
    fs::remove(partial + ".vocab", ec);
    throw Error(opts.model_prefix + ": SentencePiece training on " + opts.input + " failed: " + err);
  }
  for (const char* ext : {".model", ".vocab"}) {
    fs::rename(partial + ext, opts.model_prefix + ext, ec);
    if (ec) throw Error(opts.model_prefix + ext + ": cannot move the trained file into place (" + ec.message() + ")");
  }
}

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path, const SentencePieceOptions& opts)
    : path_(model_path), opts_(opts) {
  if (!fs::is_regular_file(model_path)) throw Error(model_path + ": SentencePiece model file not found");
  const SpmPlugin& p = plugin();
  char err[1024] = {0};
  clipcap_spm_model* model = p.load(model_path.c_str(), err, sizeof err);
  if (!model) throw Error(model_path + ": not a valid SentencePiece model (" + err + ")");
  model_ = model;
  clipcap_spm_info info{};
  p.get_info(model, &info);
  piece_size_ = info.piece_size;
  bos_id_ = info.bos_id, eos_id_ = info.eos_id, pad_id_ = info.pad_id, unk_id_ = info.unk_id;
  if ((opts.add_bos && bos_id_ < 0) || (opts.add_eos && eos_id_ < 0)) {
    p.free_model(model);
    model_ = nullptr;
    throw Error(model_path + ": the model has no " + (opts.add_bos && bos_id_ < 0 ? "bos" : "eos") +
                " piece, but add_" + (opts.add_bos && bos_id_ < 0 ? "bos" : "eos") + " was asked for");
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (model_) plugin().free_model(static_cast<clipcap_spm_model*>(model_));
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const SpmPlugin& p = plugin();
  int32_t* raw = nullptr;
  size_t n = 0;
  char err[1024] = {0};
  if (p.encode(static_cast<clipcap_spm_model*>(model_), text.data(), text.size(), &raw, &n, err, sizeof err) != 0)
    throw Error(path_ + ": encode failed: " + err);
  std::vector<int64_t> ids;
  ids.reserve(n + 2);
  if (opts_.add_bos) ids.push_back(bos_id_);
  ids.insert(ids.end(), raw, raw + n);
  p.free_buffer(raw);
  if (opts_.add_eos) ids.push_back(eos_id_);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts) const {
  std::vector<int32_t> in;
  in.reserve(ids.size());
  for (int64_t id : ids) {
    if (opts.skip_special && id >= 0 && (id == bos_id_ || id == eos_id_ || id == pad_id_)) continue;
    if (id < 0 || id >= piece_size_)
      throw Error(path_ + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(piece_size_) + ")");
    in.push_back(static_cast<int32_t>(id));
  }
  const SpmPlugin& p = plugin();
  char* raw = nullptr;
  size_t n = 0;
  char err[1024] = {0};
  if (p.decode(static_cast<clipcap_spm_model*>(model_), in.data(), in.size(), &raw, &n, err, sizeof err) != 0)
    throw Error(path_ + ": decode failed: " + err);
  std::string text(raw, n);
  p.free_buffer(raw);
  return opts.clean_up_spaces ? clean_up_tokenization(std::move(text)) : text;
}

}  // namespace clipcap
