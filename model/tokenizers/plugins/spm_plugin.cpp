// libclipcap_spm.so: SentencePiece behind the C ABI of spm_plugin_abi.h. Built as a MODULE and
// never linked into the clipcap libraries (see the ABI header for why).
#include "spm_plugin_abi.h"  // the MODULE target has no include path: same directory

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct clipcap_spm_model {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void set_error(char* err, size_t err_size, std::string message) {
  if (!err || err_size == 0) return;
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  size_t n = std::min(message.size(), err_size - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

template <typename Fn>
int guarded(char* err, size_t err_size, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
  } catch (...) {
    set_error(err, err_size, "unknown C++ exception in the SentencePiece plugin");
  }
  return 1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int clipcap_spm_abi_version(void) { return CLIPCAP_SPM_ABI_VERSION; }

__attribute__((visibility("default"))) clipcap_spm_model* clipcap_spm_load(const char* model_path, char* err,
                                                                            size_t err_size) {
  clipcap_spm_model* model = nullptr;
  int rc = guarded(err, err_size, [&] {
    auto m = std::make_unique<clipcap_spm_model>();
    auto status = m->processor.Load(model_path);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return 1;
    }
    model = m.release();
    return 0;
  });
  return rc == 0 ? model : nullptr;
}

__attribute__((visibility("default"))) void clipcap_spm_free(clipcap_spm_model* model) { delete model; }

__attribute__((visibility("default"))) int clipcap_spm_get_info(const clipcap_spm_model* model,
                                                                clipcap_spm_info* info) {
  const auto& p = model->processor;
  info->piece_size = p.GetPieceSize();
  info->bos_id = p.bos_id();
  info->eos_id = p.eos_id();
  info->pad_id = p.pad_id();
  info->unk_id = p.unk_id();
  return 0;
}

__attribute__((visibility("default"))) int clipcap_spm_encode(const clipcap_spm_model* model, const char* text,
                                                              size_t text_len, int32_t** ids, size_t* n_ids,
                                                              char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    std::vector<int> out;
    auto status = model->processor.Encode(absl::string_view(text, text_len), &out);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return 1;
    }
    *n_ids = out.size();
    *ids = static_cast<int32_t*>(std::malloc(sizeof(int32_t) * (out.size() + 1)));
    if (!*ids) {
      set_error(err, err_size, "out of memory");
      return 1;
    }
    for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = out[i];
    return 0;
  });
}

__attribute__((visibility("default"))) int clipcap_spm_decode(const clipcap_spm_model* model, const int32_t* ids,
                                                              size_t n_ids, char** text, size_t* text_len,
                                                              char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    std::vector<int> in(ids, ids + n_ids);
    std::string out;
    auto status = model->processor.Decode(in, &out);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return 1;
    }
    *text_len = out.size();
    *text = static_cast<char*>(std::malloc(out.size() + 1));
    if (!*text) {
      set_error(err, err_size, "out of memory");
      return 1;
    }
    std::memcpy(*text, out.data(), out.size());
    (*text)[out.size()] = '\0';
    return 0;
  });
}

__attribute__((visibility("default"))) void clipcap_spm_free_buffer(void* buffer) { std::free(buffer); }

__attribute__((visibility("default"))) int clipcap_spm_train(const char* const* keys, const char* const* values,
                                                             size_t n, char* err, size_t err_size) {
  return guarded(err, err_size, [&] {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < n; ++i) kwargs[keys[i]] = values[i];
    auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
    if (!status.ok()) {
      set_error(err, err_size, status.ToString());
      return 1;
    }
    return 0;
  });
}

}  // extern "C"
