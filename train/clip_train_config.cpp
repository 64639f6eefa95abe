#include "train/clip_train_config.h"

#include <cmath>
#include <initializer_list>

#include "common/json_util.h"
#include "model/kernels/activations.h"

namespace clipcap {
namespace {

using json = nlohmann::json;

// Fields of an object not in `known` are errors: a misspelt field would silently train the default.
void reject_unknown(const json& j, std::initializer_list<const char*> known, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object, got " + j.dump());
  for (const auto& item : j.items()) {
    if (item.key().rfind("_", 0) == 0) continue;  // "_comment" and friends
    bool ok = false;
    for (const char* k : known) ok = ok || item.key() == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      throw Error(where + ": unknown field '" + item.key() + "' (known: " + list + ")");
    }
  }
}

template <typename T>
void read(const json& j, const char* key, T& field, const std::string& where) {
  field = json_value<T>(j, key, field, where);
}

void read_tower(const json& j, ClipTowerShape& t, const std::string& where) {
  read(j, "hidden_size", t.hidden_size, where);
  read(j, "num_hidden_layers", t.num_hidden_layers, where);
  read(j, "num_attention_heads", t.num_attention_heads, where);
  read(j, "intermediate_size", t.intermediate_size, where);
}

json tower_json(const ClipTowerShape& t) {
  return {{"hidden_size", t.hidden_size},
          {"num_hidden_layers", t.num_hidden_layers},
          {"num_attention_heads", t.num_attention_heads},
          {"intermediate_size", t.intermediate_size}};
}

void positive(int64_t v, const std::string& field, const std::string& where) {
  if (v <= 0) throw Error(where + ": field '" + field + "' must be positive, got " + std::to_string(v));
}

void check_tower(const ClipTowerShape& t, const std::string& tower, const std::string& where) {
  positive(t.hidden_size, tower + ".hidden_size", where);
  positive(t.num_hidden_layers, tower + ".num_hidden_layers", where);
  positive(t.num_attention_heads, tower + ".num_attention_heads", where);
  positive(t.intermediate_size, tower + ".intermediate_size", where);
  if (t.hidden_size % t.num_attention_heads != 0)
    throw Error(where + ": field '" + tower + ".hidden_size' (" + std::to_string(t.hidden_size) +
                ") is not divisible by " + tower + ".num_attention_heads (" + std::to_string(t.num_attention_heads) + ")");
}

void set_encoder(CLIPEncoderConfig& e, const ClipTowerShape& t, const std::string& act) {
  e.hidden_size = t.hidden_size;
  e.num_hidden_layers = t.num_hidden_layers;
  e.num_attention_heads = t.num_attention_heads;
  e.intermediate_size = t.intermediate_size;
  e.hidden_act = act;
  e.layer_norm_eps = 1e-5;
}

}  // namespace

ClipTrainConfig ClipTrainConfig::load(const std::string& path) {
  ClipTrainConfig c = from_json(read_json(path), path);
  c.validate(path);
  return c;
}

ClipTrainConfig ClipTrainConfig::from_json(const json& j, const std::string& where) {
  reject_unknown(j, {"vision", "text", "projection_dim", "hidden_act", "tokenizer", "training"}, where);
  ClipTrainConfig c;
  if (j.contains("vision")) {
    const std::string w = where + ": vision";
    const json& v = j["vision"];
    reject_unknown(v, {"image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                       "intermediate_size"}, w);
    read_tower(v, c.vision, w);
    read(v, "image_size", c.vision.image_size, w);
    read(v, "patch_size", c.vision.patch_size, w);
  }
  if (j.contains("text")) {
    const std::string w = where + ": text";
    const json& t = j["text"];
    reject_unknown(t, {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                       "max_position_embeddings"}, w);
    read_tower(t, c.text, w);
    read(t, "max_position_embeddings", c.text.max_position_embeddings, w);
  }
  read(j, "projection_dim", c.projection_dim, where);
  read(j, "hidden_act", c.hidden_act, where);
  if (j.contains("tokenizer")) {
    const std::string w = where + ": tokenizer";
    reject_unknown(j["tokenizer"], {"vocab_size", "min_frequency"}, w);
    read(j["tokenizer"], "vocab_size", c.tokenizer.vocab_size, w);
    read(j["tokenizer"], "min_frequency", c.tokenizer.min_frequency, w);
  }
  if (j.contains("training")) {
    const std::string w = where + ": training";
    const json& t = j["training"];
    reject_unknown(t, {"epochs", "batch_size", "lr", "warmup", "weight_decay", "beta1", "beta2", "seed", "shift",
                       "scale", "blur", "posterize"},
                   w);
    ClipSchedule& s = c.training;
    read(t, "epochs", s.epochs, w);
    read(t, "batch_size", s.batch_size, w);
    read(t, "lr", s.lr, w);
    read(t, "warmup", s.warmup, w);
    read(t, "weight_decay", s.weight_decay, w);
    read(t, "beta1", s.beta1, w);
    read(t, "beta2", s.beta2, w);
    read(t, "seed", s.seed, w);
    read(t, "shift", s.shift, w);
    read(t, "scale", s.scale, w);
    read(t, "blur", s.blur, w);
    read(t, "posterize", s.posterize, w);
  }
  return c;
}

json ClipTrainConfig::to_json() const {
  json v = tower_json(vision);
  v["image_size"] = vision.image_size;
  v["patch_size"] = vision.patch_size;
  json t = tower_json(text);
  t["max_position_embeddings"] = text.max_position_embeddings;
  const ClipSchedule& s = training;
  return {{"vision", v},
          {"text", t},
          {"projection_dim", projection_dim},
          {"hidden_act", hidden_act},
          {"tokenizer", {{"vocab_size", tokenizer.vocab_size}, {"min_frequency", tokenizer.min_frequency}}},
          {"training",
           {{"epochs", s.epochs},
            {"batch_size", s.batch_size},
            {"lr", s.lr},
            {"warmup", s.warmup},
            {"weight_decay", s.weight_decay},
            {"beta1", s.beta1},
            {"beta2", s.beta2},
            {"seed", s.seed},
            {"shift", s.shift},
            {"scale", s.scale},
            {"blur", s.blur},
            {"posterize", s.posterize}}}};
}

void ClipTrainConfig::validate(const std::string& where) const {
  check_tower(vision, "vision", where);
  check_tower(text, "text", where);
  positive(vision.image_size, "vision.image_size", where);
  positive(vision.patch_size, "vision.patch_size", where);
  if (vision.image_size % vision.patch_size != 0)
    throw Error(where + ": field 'vision.image_size' (" + std::to_string(vision.image_size) +
                ") is not a multiple of vision.patch_size (" + std::to_string(vision.patch_size) + ")");
  if (text.max_position_embeddings < 3)
    throw Error(where + ": field 'text.max_position_embeddings' must be >= 3 (bos, a token, eos), got " +
                std::to_string(text.max_position_embeddings));
  positive(projection_dim, "projection_dim", where);
  activation_by_name(hidden_act, where + ": field 'hidden_act'");
  tokenizer.validate(where + ": tokenizer");
  const ClipSchedule& s = training;
  positive(s.epochs, "training.epochs", where);
  if (s.batch_size < 2)
    throw Error(where + ": field 'training.batch_size' must be >= 2 (a contrastive batch needs negatives), got " +
                std::to_string(s.batch_size));
  if (!(s.lr > 0) || !std::isfinite(s.lr)) throw Error(where + ": field 'training.lr' must be positive, got " + std::to_string(s.lr));
  if (!(s.warmup >= 0 && s.warmup < 1))
    throw Error(where + ": field 'training.warmup' is a fraction of the steps in [0, 1), got " + std::to_string(s.warmup));
  if (!(s.weight_decay >= 0)) throw Error(where + ": field 'training.weight_decay' must be >= 0");
  if (!(s.beta1 >= 0 && s.beta1 < 1) || !(s.beta2 >= 0 && s.beta2 < 1))
    throw Error(where + ": fields 'training.beta1' and 'training.beta2' must be in [0, 1)");
  if (s.shift < 0 || s.shift >= vision.image_size)
    throw Error(where + ": field 'training.shift' must be in [0, image_size), got " + std::to_string(s.shift));
  if (!(s.scale >= 0 && s.scale < 1))
    throw Error(where + ": field 'training.scale' must be in [0, 1), got " + std::to_string(s.scale));
  if (!(s.blur >= 0 && s.blur <= 1))
    throw Error(where + ": field 'training.blur' is a probability in [0, 1], got " + std::to_string(s.blur));
  if (!(s.posterize >= 0 && s.posterize <= 1))
    throw Error(where + ": field 'training.posterize' is a probability in [0, 1], got " + std::to_string(s.posterize));
}

CLIPConfig ClipTrainConfig::clip_config(int64_t vocab_size, int64_t bos_id, int64_t eos_id) const {
  CLIPConfig c;
  set_encoder(c.vision, vision, hidden_act);
  c.vision.image_size = vision.image_size;
  c.vision.patch_size = vision.patch_size;
  c.vision.num_channels = 3;
  set_encoder(c.text, text, hidden_act);
  c.text.vocab_size = vocab_size;
  c.text.max_position_embeddings = text.max_position_embeddings;
  c.text.bos_token_id = bos_id;
  c.text.eos_token_id = eos_id;
  c.text.pad_token_id = eos_id;
  c.projection_dim = projection_dim;
  c.vision.source = c.text.source = "CLIP being trained";
  return c;
}

}  // namespace clipcap
