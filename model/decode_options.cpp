#include "model/decode_options.h"

#include <cmath>

#include "common/option_table.h"
#include "model/decoding.h"

namespace clipcap {

namespace {

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const auto& s : search_strategies()) names.push_back(s.name);
  return names;
}

OptionTable<DecodeOptions> make_table() {
  using D = DecodeOptions;
  OptionTable<D> t("decoding options");
  t.field("strategy", "--strategy", "greedy, sample or beam", &D::strategy).choices(strategy_names());
  t.field("max_len", "--max-len", "most tokens per caption (EOS included)", &D::max_len)
      .check([](const D& o) { return o.max_len >= 1 ? "" : "must be >= 1"; });
  t.field("min_len", "--min-len", "no EOS before this many tokens", &D::min_len)
      .check([](const D& o) -> std::string {
        if (o.min_len < 0) return "must be >= 0";
        if (o.min_len > o.max_len)
          return "must not be above --max-len " + std::to_string(o.max_len) + " (no caption could end)";
        return "";
      });
  t.field("no_repeat_ngram_size", "--no-repeat-ngram-size", "never repeat an n-gram of this size (0 = off)",
          &D::no_repeat_ngram_size)
      .check([](const D& o) { return o.no_repeat_ngram_size >= 0 ? "" : "must be >= 0"; });
  t.field("beam_size", "-b,--beam-size,--beam", "beam: hypotheses per image (> 1 alone selects beam)", &D::beam_size)
      .check([](const D& o) { return o.beam_size >= 1 ? "" : "must be >= 1"; });
  t.field("length_penalty", "--length-penalty", "beam: score = sum logprob / length^this", &D::length_penalty)
      .check([](const D& o) { return std::isfinite(o.length_penalty) ? "" : "must be finite"; });
  t.field("temperature", "--temperature", "sample: logits / temperature", &D::temperature)
      .check([](const D& o) { return o.temperature > 0.0f && std::isfinite(o.temperature) ? "" : "must be > 0"; });
  t.field("top_k", "--top-k", "sample: keep the k most likely tokens (0 = all)", &D::top_k)
      .check([](const D& o) { return o.top_k >= 0 ? "" : "must be >= 0"; });
  t.field("top_p", "--top-p", "sample: nucleus probability mass", &D::top_p)
      .check([](const D& o) { return o.top_p > 0.0f && o.top_p <= 1.0f ? "" : "must be in (0, 1]"; });
  t.field("seed", "--seed", "sample: random seed (same seed, same captions)", &D::seed);
  t.field("rerank", "--rerank", "none, or clip: choose among --rerank-candidates with a CLIP (--rerank-clip)",
          &D::rerank)
      .choices({"none", "clip"});
  t.field("rerank_candidates", "--rerank-candidates",
          "rerank: candidates per image (beam search of this width, or this many samples)", &D::rerank_candidates)
      .check([](const D& o) { return o.rerank_candidates >= 1 ? "" : "must be >= 1"; });
  t.field("rerank_weight", "--rerank-weight", "rerank: CLIP's share of the score (0 = language model only, 1 = CLIP only)",
          &D::rerank_weight)
      .check([](const D& o) { return o.rerank_weight >= 0.0f && o.rerank_weight <= 1.0f ? "" : "must be in [0, 1]"; });
  return t;
}

}  // namespace

const OptionTable<DecodeOptions>& decode_option_table() {
  static const OptionTable<DecodeOptions> table = make_table();
  return table;
}

void DecodeOptions::validate() const { decode_option_table().validate(*this); }

nlohmann::json DecodeOptions::to_json() const { return decode_option_table().to_json(*this); }

DecodeOptions DecodeOptions::from_json(const nlohmann::json& j, const std::string& where,
                                       const DecodeOptions& defaults) {
  if (j.is_object() && !j.contains("strategy") && (j.contains("do_sample") || j.contains("beam_size"))) {
    nlohmann::json upgraded = j;
    const bool sample = json_value<bool>(j, "do_sample", false, where);
    const int beams = json_value<int>(j, "beam_size", defaults.beam_size, where);
    upgraded["strategy"] = sample ? "sample" : beams > 1 ? "beam" : "greedy";
    upgraded.erase("do_sample");
    return decode_option_table().from_json(upgraded, where, defaults);
  }
  return decode_option_table().from_json(j, where, defaults);
}

DecodeOptions DecodeOptions::from_json(const nlohmann::json& j, const std::string& where) {
  return from_json(j, where, DecodeOptions{});
}

}  // namespace clipcap
