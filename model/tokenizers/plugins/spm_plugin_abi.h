// The C ABI between clipcap_tokenizers and libclipcap_spm.so (the SentencePiece plugin).
//
// Why a plugin: Debian's libsentencepiece carries its own copy of protobuf, and libtorch loads
// libprotobuf.so.32; linking both into one executable crashes before main. The core dlopen()s this
// plugin with RTLD_LOCAL | RTLD_DEEPBIND so each keeps its own protobuf. Only plain C types cross
// the boundary; the plugin catches every C++ exception.
//
// Conventions: functions returning int return 0 on success, else write a NUL-terminated one-line
// message into err (at most err_size bytes) and return nonzero. Buffers the plugin allocates are
// released with clipcap_spm_free_buffer.
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CLIPCAP_SPM_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clipcap_spm_model clipcap_spm_model;

typedef struct clipcap_spm_info {
  int32_t piece_size;
  int32_t bos_id, eos_id, pad_id, unk_id;  // -1 when the model has none
} clipcap_spm_info;

int clipcap_spm_abi_version(void);

clipcap_spm_model* clipcap_spm_load(const char* model_path, char* err, size_t err_size);  // NULL on error
void clipcap_spm_free(clipcap_spm_model* model);
int clipcap_spm_get_info(const clipcap_spm_model* model, clipcap_spm_info* info);

int clipcap_spm_encode(const clipcap_spm_model* model, const char* text, size_t text_len, int32_t** ids,
                       size_t* n_ids, char* err, size_t err_size);
int clipcap_spm_decode(const clipcap_spm_model* model, const int32_t* ids, size_t n_ids, char** text,
                       size_t* text_len, char* err, size_t err_size);
void clipcap_spm_free_buffer(void* buffer);

// SentencePieceTrainer::Train with flag name/value pairs ("input", "model_prefix", "vocab_size", ...).
int clipcap_spm_train(const char* const* keys, const char* const* values, size_t n, char* err, size_t err_size);

#ifdef __cplusplus
}
#endif
