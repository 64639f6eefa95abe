#include "train/train_config.h"

#include <cmath>

#include <set>

#include "common/error.h"
#include "common/json_util.h"
#include "common/strings.h"

namespace clipcap {

namespace {

void check_one_of(const std::string& value, const std::set<std::string>& allowed, const std::string& key,
                  const std::string& where) {
  if (allowed.count(value)) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw Error(where + ": field '" + key + "' is '" + value + "'; expected one of " + list);
}

void check_positive(double value, const std::string& key, const std::string& where) {
  if (!(value > 0)) throw Error(where + ": field '" + key + "' must be positive (got " + std::to_string(value) + ")");
}

nlohmann::json decoder_to_json(const ScratchDecoderConfig& d) {
  return {{"from_scratch", d.enabled}, {"n_layer", d.n_layer}, {"n_embd", d.n_embd}, {"n_head", d.n_head},
          {"vocab_size", d.vocab_size}, {"tokenizer_model_type", d.tokenizer_model_type}, {"dropout", d.dropout}};
}

}  // namespace

nlohmann::json TrainConfig::to_json() const {
  return {{"clip_model", clip_model},
          {"text_model", text_model},
          {"seed", seed},
          {"num_workers", num_workers},
          {"train_size", train_size},
          {"val_size", val_size},
          {"epochs", epochs},
          {"lr", lr},
          {"k", k},
          {"batch_size_exp", batch_size_exp},
          {"ep_len", ep_len},
          {"num_layers", num_layers},
          {"n_heads", n_heads},
          {"forward_expansion", forward_expansion},
          {"max_len", max_len},
          {"dropout", dropout},
          {"weights_dir", weights_dir},
          {"freeze", freeze},
          {"schedule", schedule},
          {"schedule_unit", schedule_unit},
          {"warmup", warmup},
          {"optimizer", optimizer},
          {"weight_decay", weight_decay},
          {"adam_beta1", adam_beta1},
          {"adam_beta2", adam_beta2},
          {"adam_eps", adam_eps},
          {"grad_clip", grad_clip},
          {"grad_accum", grad_accum},
          {"autocast", autocast},
          {"lowercase", lowercase},
          {"strip", strip},
          {"normalize_prefix_input", normalize_prefix_input},
          {"prefix_noise", prefix_noise},
          {"save_every", save_every},
          {"log_every", log_every},
          {"val_samples", val_samples},
          {"decoder", decoder_to_json(decoder)}};
}

MappingConfig mapping_config(const TrainConfig& cfg) {
  MappingConfig m;
  m.ep_len = cfg.ep_len;
  m.num_layers = cfg.num_layers;
  m.n_heads = cfg.n_heads;
  m.forward_expansion = cfg.forward_expansion;
  m.dropout = cfg.dropout;
  return m;
}

nlohmann::json train_config_defaults() { return TrainConfig{}.to_json(); }

void merge_config(nlohmann::json& config, const nlohmann::json& patch, const std::string& where) {
  if (!patch.is_object()) throw Error(where + ": a training config must be a JSON object");
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& key = it.key();
    if (!key.empty() && key[0] == '_') continue;  // "_comment"
    if (!config.contains(key)) throw Error(where + ": unknown field '" + key + "'");
    if (key == "decoder") {
      if (!it->is_object()) throw Error(where + ": field 'decoder' must be an object");
      for (auto d = it->begin(); d != it->end(); ++d) {
        if (!config["decoder"].contains(d.key())) throw Error(where + ": unknown field 'decoder." + d.key() + "'");
        config["decoder"][d.key()] = *d;
      }
    } else {
      config[key] = *it;
    }
  }
}

void apply_override(nlohmann::json& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set '" + assignment + "': expected key=value (e.g. --set epochs=10)");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;
  nlohmann::json patch;
  if (key.rfind("decoder.", 0) == 0)
    patch["decoder"][key.substr(8)] = value;
  else
    patch[key] = value;
  merge_config(config, patch, "--set " + assignment);
}

TrainConfig TrainConfig::from_json(const nlohmann::json& raw, const std::string& where) {
  nlohmann::json j = train_config_defaults();
  merge_config(j, raw, where);
  TrainConfig c;
  auto get = [&](const char* key, auto& field) {
    field = json_require<std::decay_t<decltype(field)>>(j, key, where);
  };
  get("clip_model", c.clip_model);
  get("text_model", c.text_model);
  get("seed", c.seed);
  get("num_workers", c.num_workers);
  get("train_size", c.train_size);
  get("val_size", c.val_size);
  get("epochs", c.epochs);
  get("lr", c.lr);
  get("k", c.k);
  get("batch_size_exp", c.batch_size_exp);
  get("ep_len", c.ep_len);
  get("num_layers", c.num_layers);
  get("n_heads", c.n_heads);
  get("forward_expansion", c.forward_expansion);
  get("max_len", c.max_len);
  get("dropout", c.dropout);
  get("weights_dir", c.weights_dir);
  get("freeze", c.freeze);
  get("schedule", c.schedule);
  get("schedule_unit", c.schedule_unit);
  get("warmup", c.warmup);
  get("optimizer", c.optimizer);
  get("weight_decay", c.weight_decay);
  get("adam_beta1", c.adam_beta1);
  get("adam_beta2", c.adam_beta2);
  get("adam_eps", c.adam_eps);
  get("grad_clip", c.grad_clip);
  get("grad_accum", c.grad_accum);
  get("autocast", c.autocast);
  get("lowercase", c.lowercase);
  get("strip", c.strip);
  get("normalize_prefix_input", c.normalize_prefix_input);
  get("prefix_noise", c.prefix_noise);
  get("save_every", c.save_every);
  get("log_every", c.log_every);
  get("val_samples", c.val_samples);
  const nlohmann::json& d = j["decoder"];
  const std::string dw = where + ": decoder";
  c.decoder.enabled = json_require<bool>(d, "from_scratch", dw);
  c.decoder.n_layer = json_require<int64_t>(d, "n_layer", dw);
  c.decoder.n_embd = json_require<int64_t>(d, "n_embd", dw);
  c.decoder.n_head = json_require<int64_t>(d, "n_head", dw);
  c.decoder.vocab_size = json_require<int64_t>(d, "vocab_size", dw);
  c.decoder.tokenizer_model_type = json_require<std::string>(d, "tokenizer_model_type", dw);
  c.decoder.dropout = json_require<double>(d, "dropout", dw);

  check_positive(c.epochs, "epochs", where);
  check_positive(c.lr, "lr", where);
  if (!(c.k > 0 && c.k < 1)) throw Error(where + ": field 'k' must be in (0, 1)");
  if (c.batch_size_exp < 0 || c.batch_size_exp > 16) throw Error(where + ": field 'batch_size_exp' must be in [0, 16]");
  check_positive(c.max_len, "max_len", where);
  if (!(c.warmup >= 0 && c.warmup < 1)) throw Error(where + ": field 'warmup' must be in [0, 1)");
  if (c.weight_decay < 0) throw Error(where + ": field 'weight_decay' must be >= 0");
  if (c.grad_clip < 0) throw Error(where + ": field 'grad_clip' must be >= 0 (0 = off)");
  check_positive(c.grad_accum, "grad_accum", where);
  check_positive(c.save_every, "save_every", where);
  if (c.log_every < 0) throw Error(where + ": field 'log_every' must be >= 0 (0: no step log)");
  if (c.val_samples < 0) throw Error(where + ": field 'val_samples' must be >= 0");
  if (!(c.prefix_noise >= 0) || !std::isfinite(c.prefix_noise))
    throw Error(where + ": field 'prefix_noise' must be >= 0 (0 = off)");
  // Checked here, before any data is read or a tokenizer trained (a flag of the same name sets each).
  check_positive(c.ep_len, "ep_len", where);
  check_positive(c.n_heads, "n_heads", where);
  check_positive(c.forward_expansion, "forward_expansion", where);
  if (c.num_layers < 0) throw Error(where + ": field 'num_layers' must be >= 0");
  const auto check_fraction = [&](double v, const char* key) {
    if (!(v >= 0 && v < 1))
      throw Error(where + ": field '" + key + "' must be in [0, 1) (got " + format_number(v, "%g") + ")");
  };
  check_fraction(c.dropout, "dropout");
  check_fraction(c.decoder.dropout, "decoder.dropout");
  check_fraction(c.adam_beta1, "adam_beta1");
  check_fraction(c.adam_beta2, "adam_beta2");
  check_positive(c.adam_eps, "adam_eps", where);
  check_one_of(c.freeze, {"upstream", "mapping-only", "full"}, "freeze", where);
  check_one_of(c.schedule, {"upstream", "cosine", "linear", "constant"}, "schedule", where);
  check_one_of(c.schedule_unit, {"step", "epoch"}, "schedule_unit", where);
  check_one_of(c.optimizer, {"adam", "adamw"}, "optimizer", where);
  check_one_of(c.autocast, {"none", "bf16"}, "autocast", where);
  check_one_of(c.decoder.tokenizer_model_type, {"unigram", "bpe"}, "decoder.tokenizer_model_type", where);
  if (c.decoder.enabled) {
    check_positive(c.decoder.n_layer, "decoder.n_layer", where);
    check_positive(c.decoder.n_embd, "decoder.n_embd", where);
    check_positive(c.decoder.n_head, "decoder.n_head", where);
    if (c.decoder.n_embd % c.decoder.n_head != 0)
      throw Error(where + ": decoder.n_embd must be divisible by decoder.n_head");
    if (c.decoder.vocab_size < 8) throw Error(where + ": decoder.vocab_size must be at least 8");
  }
  return c;
}

}  // namespace clipcap
