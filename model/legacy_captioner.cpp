#include "model/legacy_captioner.h"

#include <torch/torch.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include "common/error.h"

namespace clipcap {

std::vector<int64_t> legacy_generate(GPT2Impl& gpt2, const torch::Tensor& prefix, int max_len, LegacyTrace* trace) {
  torch::NoGradGuard no_grad;
  const auto opts = gpt2.wte->weight.options();
  const int64_t bos = gpt2.config.bos_token_id, eos = gpt2.config.eos_token_id;
  const int64_t rows = prefix.size(0) + 1;
  if (rows + max_len - 1 > gpt2.config.n_positions)
    throw Error("legacy captioning: ep_len " + std::to_string(prefix.size(0)) + " + 1 + max_len " +
                std::to_string(max_len) + " exceeds GPT-2's n_positions " + std::to_string(gpt2.config.n_positions));

  auto bos_emb = gpt2.embed(torch::tensor({bos}, torch::kInt64).to(opts.device()));  // (1, D)
  auto start = torch::cat({bos_emb, prefix.to(opts)}, 0);                              // (1+E, D)
  if (trace) trace->start_emb = start.clone();
  auto positions = torch::arange(rows + max_len, torch::TensorOptions().dtype(torch::kInt64).device(opts.device()));

  std::vector<int64_t> tokens;
  for (int step = 0; step < max_len; ++step) {
    torch::Tensor emb;
    if (tokens.empty()) {
      emb = start;  // the alias: the in-place add below changes start itself, for every later step
    } else {
      auto ids = torch::tensor(tokens, torch::kInt64).to(opts.device());
      emb = torch::cat({start, gpt2.embed(ids)}, 0);  // (1+E+t, D), a new tensor
    }
    emb.add_(gpt2.wpe->forward(positions.slice(0, 0, emb.size(0))));  // (1+E+t, D)
    if (trace && step == 0) trace->step0_inputs_embeds = emb.clone();
    if (trace && step == 1) trace->step1_inputs_embeds = emb.clone();

    auto hidden = gpt2.forward(emb.unsqueeze(0));                              // (1, T, D): adds wpe again
    auto logits = gpt2.logits(hidden.select(1, -1)).squeeze(0).to(torch::kFloat32);  // (V)
    if (trace) {
      if (step == 0) trace->step0_logits_last = logits.clone();
      trace->step_logsumexp.push_back(torch::logsumexp(logits, 0).item<double>());
    }
    const int64_t next = logits.argmax().item<int64_t>();
    tokens.push_back(next);
    if (next == eos) break;
  }
  return tokens;
}

std::string legacy_caption_text(const Tokenizer& tokenizer, const std::vector<int64_t>& tokens) {
  if (tokens.empty()) return "";
  std::vector<int64_t> kept(tokens.begin(), tokens.end() - 1);  // upstream's tokens[:-1], always
  DecodeTextOptions opts;
  opts.skip_special = false;  // HF decode()'s default, as upstream called it
  opts.clean_up_spaces = true;
  return upper_first_code_point(python_strip(tokenizer.decode(kept, opts)));
}

torch::Tensor legacy_train_loss(MappingImpl& mapping, GPT2Impl& gpt2, const torch::Tensor& img_emb,
                                const torch::Tensor& trg_cap, const torch::Tensor& att_mask) {
  const auto opts = gpt2.wte->weight.options();
  const int64_t N = trg_cap.size(0), L = trg_cap.size(1), E = mapping.config.ep_len;
  auto x_ids = trg_cap.slice(1, 0, L - 1);                                       // (N, L-1)
  auto y = trg_cap.slice(1, 1, L);                                               // (N, L-1)
  auto mapped = mapping.forward_upstream_batch(img_emb.to(opts));                // (N, E, D)
  auto x = torch::cat({mapped, gpt2.embed(x_ids.to(opts.device()))}, 1);         // (N, E+L-1, D)
  auto mask = torch::cat({torch::ones({N, E}, att_mask.options()), att_mask.slice(1, 0, L - 1)}, 1);  // (N, E+L-1)
  auto positions = torch::arange(x.size(1), torch::TensorOptions().dtype(torch::kInt64).device(opts.device()));
  x = x + gpt2.wpe->forward(positions);                                          // by hand; GPT-2 adds it again
  auto logits = gpt2.logits(gpt2.forward(x, mask.to(opts.device())));           // (N, E+L-1, V)
  auto probs = torch::softmax(logits.to(torch::kFloat32), 2).slice(1, E);        // (N, L-1, V)
  return torch::nn::functional::cross_entropy(probs.reshape({-1, probs.size(2)}), y.reshape({-1}).to(opts.device()));
}

// ---- Python string semantics ---------------------------------------------------------------------

namespace {

// Python 3's str.isspace(): bidirectional class WS, B or S, or category Zs.
bool python_isspace(UChar32 c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

std::string python_strip(const std::string& utf8) {
  const auto* s = reinterpret_cast<const uint8_t*>(utf8.data());
  const int32_t n = static_cast<int32_t>(utf8.size());
  int32_t begin = 0;
  while (begin < n) {
    int32_t i = begin;
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0 || !python_isspace(c)) break;
    begin = i;
  }
  int32_t end = n;
  while (end > begin) {
    int32_t i = end;
    UChar32 c;
    U8_PREV(s, begin, i, c);
    if (c < 0 || !python_isspace(c)) break;
    end = i;
  }
  return utf8.substr(begin, end - begin);
}

std::string upper_first_code_point(const std::string& utf8) {
  if (utf8.empty()) return utf8;
  const auto* s = reinterpret_cast<const uint8_t*>(utf8.data());
  int32_t next = 0;
  UChar32 c;
  U8_NEXT(s, next, static_cast<int32_t>(utf8.size()), c);
  if (c < 0) return utf8;  // not valid UTF-8: leave it alone
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, c);
  UChar upper[8];
  UErrorCode err = U_ZERO_ERROR;
  // "root": no language-specific rules (Python's upper() has none: 'i' -> 'I' even in Turkish).
  int32_t upper_len = u_strToUpper(upper, 8, src, src_len, "root", &err);
  if (U_FAILURE(err)) return utf8;
  char out[32];
  int32_t out_len = 0;
  u_strToUTF8(out, sizeof out, &out_len, upper, upper_len, &err);
  if (U_FAILURE(err)) return utf8;
  return std::string(out, out_len) + utf8.substr(next);
}

}  // namespace clipcap
