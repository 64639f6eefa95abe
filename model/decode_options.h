// How captions are decoded: the strategy and its settings, declared once in a table that drives
// validation, the "decoding" section of a model's config.json and the command-line flags
// (backend/backend_flags.h).
//
//   clipcap::DecodeOptions opts;               // greedy, max_len 40
//   opts.strategy = "beam";  opts.beam_size = 3;
//   opts.validate();                           // Error naming the option and its flag
//   nlohmann::json j = opts.to_json();         // {"strategy": "beam", "max_len": 40, ...}
//
// Strategies (model/decoding.h search_strategies()): greedy (the most likely token), sample (drawn
// after temperature / top-k / top-p), beam (beam search with a length penalty). Any of them can be
// reranked: rerank = "clip" picks among several candidates with a CLIP (model/clip_reranker.h). A new option is one
// row of decode_option_table(); a new strategy one class and one row of search_strategies().
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace clipcap {

template <typename T>
class OptionTable;

struct DecodeOptions {
  std::string strategy = "greedy";  // greedy | sample | beam
  int max_len = 40;                 // most tokens written per caption (the EOS counts as one)
  int min_len = 0;                  // EOS is banned until this many tokens are written
  int no_repeat_ngram_size = 0;     // ban tokens that would repeat an n-gram already written (0 = off)
  int beam_size = 1;                // beam: hypotheses kept per image
  float length_penalty = 1.0f;      // beam: score = sum logprob / length^length_penalty (length incl. EOS)
  float temperature = 1.0f;         // sample: logits / temperature
  int top_k = 0;                    // sample: keep the k most likely tokens (0 = all)
  float top_p = 1.0f;               // sample: keep the smallest set with probability >= top_p
  uint64_t seed = 0;                // sample: the same seed gives the same captions
  // Reranking (model/clip_reranker.h): K candidates per image (beam search of width
  // max(beam_size, K), or K samples with seeds seed .. seed+K-1), the best by
  // (1 - W) * mean token logprob + W * log softmax over the candidates of CLIP's logit.
  std::string rerank = "none";      // none | clip
  int rerank_candidates = 8;        // K
  float rerank_weight = 0.5f;       // W in [0, 1]: 0 = the language model alone, 1 = CLIP alone

  void validate() const;  // Error naming the option and its flag when a value is out of range

  // The "decoding" section of a model's config.json: every field by name. Missing keys keep the
  // values of `defaults`; a section without "strategy" (written before it existed) takes it from
  // its do_sample and beam_size.
  nlohmann::json to_json() const;
  static DecodeOptions from_json(const nlohmann::json& j, const std::string& where, const DecodeOptions& defaults);
  static DecodeOptions from_json(const nlohmann::json& j, const std::string& where);
};

// Every field: JSON key, flags, help, range.
const OptionTable<DecodeOptions>& decode_option_table();

}  // namespace clipcap
