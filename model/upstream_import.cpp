#include "model/upstream_import.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "model/captioner.h"
#include "model/weights/load_weights.h"
#include "model/weights/weight_source.h"

namespace fs = std::filesystem;

namespace clipcap {

namespace {

// The config's clip_model / text_model as a directory: relative paths are relative to the config
// file. Hub names ("openai/clip-vit-base-patch32") are not downloaded: the user passes a directory.
std::string resolve_model_dir(const std::string& given, const nlohmann::json& cfg, const std::string& key,
                              const std::string& config_path, const std::string& flag) {
  if (!given.empty()) {
    if (!fs::is_directory(given)) throw Error(given + ": not a directory (" + flag + ")");
    return given;
  }
  std::string value = json_require<std::string>(cfg, key, config_path);
  fs::path p = fs::path(value).is_absolute() ? fs::path(value) : fs::path(config_path).parent_path() / value;
  p = p.lexically_normal();
  if (!fs::is_directory(p))
    throw Error(config_path + ": " + key + " '" + value + "' is not a directory here (" + p.string() +
                "); pass " + flag + " DIR with the HF model directory");
  return p.string();
}

}  // namespace

void import_upstream(const UpstreamImport& in, const std::string& out_dir) {
  nlohmann::json uc = read_json(in.config);
  if (!uc.is_object()) throw Error(in.config + ": not a JSON object");
  const std::string clip_dir = resolve_model_dir(in.clip_dir, uc, "clip_model", in.config, "--clip");
  const std::string gpt2_dir = resolve_model_dir(in.gpt2_dir, uc, "text_model", in.config, "--gpt2");

  const std::string clip_config = clip_dir + "/config.json", gpt2_config = gpt2_dir + "/config.json";
  CaptionerConfig cfg;
  cfg.clip = CLIPConfig::from_json(read_json(clip_config), clip_config);
  cfg.gpt2 = GPT2Config::from_json(read_json(gpt2_config), gpt2_config);
  cfg.legacy = true;
  cfg.prefix_input = "pooler_output";
  cfg.normalize_prefix_input = false;
  const int64_t D = cfg.clip.vision.hidden_size;
  if (D != cfg.gpt2.n_embd)
    throw Error(clip_config + ": vision hidden_size " + std::to_string(D) + " differs from " + gpt2_config +
                " n_embd " + std::to_string(cfg.gpt2.n_embd) + " (upstream requires them equal)");
  if (uc.contains("embed_size") && json_require<int64_t>(uc, "embed_size", in.config) != D)
    throw Error(in.config + ": embed_size " + uc["embed_size"].dump() + " differs from the CLIP width " +
                std::to_string(D) + " of " + clip_config);
  cfg.mapping = MappingConfig::from_json(uc, D, D, in.config);
  cfg.decoding.max_len = json_value<int>(uc, "max_len", cfg.decoding.max_len, in.config);

  auto tokenizer = load_tokenizer(gpt2_dir);
  cfg.tokenizer = tokenizer->kind();

  auto src = open_weights(in.checkpoint);
  auto load = [&](torch::nn::Module& m, const std::string& prefix, const std::string& config_path) {
    WeightLoadOptions o;
    o.prefixes = {prefix};
    o.config_path = config_path;
    load_weights(m, *src, o);
  };
  CLIPVisionTransformer vision(cfg.clip.vision);
  load(*vision, "ie.model.", clip_config);
  Mapping mapping(cfg.mapping);
  load(*mapping, "mp.", in.config);
  GPT2 gpt2(cfg.gpt2);
  load(*gpt2, "td.model.transformer.", gpt2_config);
  const std::string head = "td.model.lm_head.weight";
  if (src->contains(head)) {
    if (src->shape(head) != gpt2->wte->weight.sizes().vec())
      throw Error(src->path() + ": tensor '" + head + "' has shape " + shape_string(src->shape(head)) + " but " +
                  gpt2_config + " implies " + shape_string(gpt2->wte->weight.sizes().vec()));
    auto w = src->load(head, torch::kFloat32);
    if (!torch::equal(w, gpt2->wte->weight)) gpt2->untie_lm_head(w);
  }

  Captioner captioner(std::move(cfg), vision, torch::nn::Linear{nullptr}, mapping, gpt2, std::move(tokenizer),
                      ImageProcessor::from_dir(clip_dir), gpt2_dir);
  captioner.save(out_dir);
}

}  // namespace clipcap
