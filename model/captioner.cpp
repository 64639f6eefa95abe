#include "model/captioner.h"

#include <functional>
#include <memory>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "model/decoding.h"
#include "model/kernels/int8_linear.h"
#include "model/legacy_captioner.h"
#include "model/quantize.h"
#include "model/weights/load_weights.h"
#include "model/weights/safetensors.h"

namespace fs = std::filesystem;

namespace clipcap {

namespace {

// Why a config.json is not ours, in words a user can act on.
std::string describe_foreign_config(const nlohmann::json& j) {
  if (!j.is_object()) return "config.json is not a JSON object";
  std::string model_type = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (model_type == "gpt2") return "looks like an HF GPT-2 directory, not a clipcap model";
  if (model_type.rfind("clip", 0) == 0) return "looks like an HF CLIP directory, not a clipcap model";
  if (j.contains("ep_len") && (j.contains("clip_model") || j.contains("text_model")))
    return "looks like an upstream training config, not a clipcap model (convert the checkpoint with "
           "'clipcap-infer import-upstream')";
  if (!model_type.empty()) return "looks like an HF '" + model_type + "' directory, not a clipcap model";
  return "not a clipcap model (config.json has no \"format\": \"clipcap\")";
}

void load_part(torch::nn::Module& m, const WeightSource& src, const std::vector<std::string>& prefixes,
               torch::ScalarType dtype, const std::string& config_path) {
  WeightLoadOptions o;
  o.prefixes = prefixes;
  o.dtype = dtype;
  o.config_path = config_path;
  load_weights(m, src, o);
}

// lm_head.weight stored under `name` becomes GPT-2's own parameter only when it differs from wte.
void load_lm_head(GPT2Impl& gpt2, const WeightSource& src, const std::string& name, torch::ScalarType dtype) {
  if (!src.contains(name)) return;
  if (src.shape(name) != gpt2.wte->weight.sizes().vec())
    throw Error(src.path() + ": tensor '" + name + "' has shape " + shape_string(src.shape(name)) +
                ", wte.weight has " + shape_string(gpt2.wte->weight.sizes().vec()));
  auto head = src.load(name, dtype);
  if (!torch::equal(head, gpt2.wte->weight)) gpt2.untie_lm_head(head);
}

torch::nn::Linear make_visual_projection(const CLIPConfig& clip) {
  return torch::nn::Linear(torch::nn::LinearOptions(clip.vision.hidden_size, clip.projection_dim).bias(false));
}

void check_prefix_input(const std::string& v, const std::string& where) {
  if (v != "pooler_output" && v != "image_embeds")
    throw Error(where + ": prefix_input must be \"pooler_output\" or \"image_embeds\", got \"" + v + "\"");
}

}  // namespace

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {"vocab.json",      "merges.txt",  "encoder.json",
                                                 "vocab.bpe",       "tokenizer.model", "spm.model",
                                                 "tokenizer_config.json", "special_tokens_map.json"};
  return names;
}

// ---- config ------------------------------------------------------------------------------------

int64_t CaptionerConfig::prefix_input_size() const {
  return prefix_input == "image_embeds" ? clip.projection_dim : clip.vision.hidden_size;
}

CaptionerConfig CaptionerConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("format") || j["format"] != "clipcap") throw Error(where + ": " + describe_foreign_config(j));
  int version = json_require<int>(j, "format_version", where);
  if (version > kCaptionerFormatVersion)
    throw Error(where + ": format_version " + std::to_string(version) + " was written by a newer clipcap; this build reads up to " +
                std::to_string(kCaptionerFormatVersion));
  if (version < 1) throw Error(where + ": invalid format_version " + std::to_string(version));

  CaptionerConfig c;
  if (!j.contains("clip") || !j.contains("gpt2") || !j.contains("mapping"))
    throw Error(where + ": missing one of the sections 'clip', 'gpt2', 'mapping'");
  c.clip = CLIPConfig::from_json(j["clip"], where + ": clip");
  c.gpt2 = GPT2Config::from_json(j["gpt2"], where + ": gpt2");
  c.prefix_input = json_value<std::string>(j, "prefix_input", c.prefix_input, where);
  check_prefix_input(c.prefix_input, where);
  if (c.prefix_input == "image_embeds" && c.clip.projection_dim <= 0)
    throw Error(where + ": prefix_input is image_embeds but the CLIP config has no projection_dim");
  c.normalize_prefix_input = json_value<bool>(j, "normalize_prefix_input", c.normalize_prefix_input, where);
  c.legacy = json_value<bool>(j, "legacy", c.legacy, where);
  c.mapping = MappingConfig::from_json(j["mapping"], c.prefix_input_size(), c.gpt2.n_embd, where + ": mapping");
  c.decoding = DecodeOptions::from_json(j.contains("decoding") ? j["decoding"] : nlohmann::json(), where + ": decoding");
  c.tokenizer = json_value<std::string>(j, "tokenizer", c.tokenizer, where);
  if (c.legacy && c.mapping.input_size != c.gpt2.n_embd)
    throw Error(where + ": a legacy model needs the CLIP width to equal GPT-2's n_embd");
  return c;
}

nlohmann::json CaptionerConfig::to_json() const {
  return {{"format", "clipcap"},
          {"format_version", kCaptionerFormatVersion},
          {"clip", clip.to_json()},
          {"gpt2", gpt2.to_json()},
          {"mapping", mapping.to_json()},
          {"prefix_input", prefix_input},
          {"normalize_prefix_input", normalize_prefix_input},
          {"legacy", legacy},
          {"decoding", decoding.to_json()},
          {"tokenizer", tokenizer}};
}

// ---- construction ------------------------------------------------------------------------------

Captioner::Captioner(CaptionerConfig cfg, CLIPVisionTransformer vision_model, torch::nn::Linear visual_projection,
                     Mapping mapping, GPT2 gpt2, std::unique_ptr<Tokenizer> tokenizer, ImageProcessor processor,
                     std::string tokenizer_dir)
    : cfg_(std::move(cfg)),
      vision_model_(std::move(vision_model)),
      visual_projection_(std::move(visual_projection)),
      mapping_(std::move(mapping)),
      gpt2_(std::move(gpt2)),
      tokenizer_(std::move(tokenizer)),
      processor_(std::move(processor)),
      tokenizer_dir_(std::move(tokenizer_dir)) {
  if (cfg_.prefix_input == "image_embeds" && !visual_projection_)
    throw Error("captioner: prefix_input is image_embeds but there is no visual_projection");
  if (tokenizer_ && tokenizer_->kind() != cfg_.tokenizer)
    throw Error(tokenizer_dir_ + ": tokenizer files are " + tokenizer_->kind() + ", the model config says " +
                cfg_.tokenizer);
  dtype_ = gpt2_->wte->weight.scalar_type();
  device_ = gpt2_->wte->weight.device();
  vision_model_->eval();
  mapping_->eval();
  gpt2_->eval();
}

void Captioner::to(torch::Device device, torch::ScalarType dtype) {
  if (int8_weights_) throw Error("a captioner with int8 weights cannot be converted");
  vision_model_->to(device, dtype);
  if (visual_projection_) visual_projection_->to(device, dtype);
  mapping_->to(device, dtype);
  gpt2_->to(device, dtype);
  device_ = device;
  dtype_ = dtype;
}

Captioner Captioner::load(const std::string& dir, const CaptionerLoadOptions& opts) {
  if (!fs::exists(dir)) throw Error(dir + ": model directory does not exist");
  if (!fs::is_directory(dir)) throw Error(dir + ": not a directory (expected a clipcap model directory)");
  const std::string config_path = dir + "/config.json";
  if (!fs::exists(config_path)) {
    std::string hint = fs::exists(dir + "/model.pt") ? " (an upstream model.pt? convert it with 'clipcap-infer import-upstream')" : "";
    throw Error(dir + ": not a clipcap model directory: no config.json" + hint);
  }
  nlohmann::json j = read_json(config_path);
  if (!j.is_object() || !j.contains("format") || j["format"] != "clipcap") throw Error(dir + ": " + describe_foreign_config(j));
  CaptionerConfig cfg = CaptionerConfig::from_json(j, config_path);

  const std::string weights_path = dir + "/model.safetensors";
  if (!fs::exists(weights_path)) throw Error(dir + ": model.safetensors is missing");
  SafetensorsFile src(weights_path);

  CLIPVisionTransformer vision(cfg.clip.vision);
  load_part(*vision, src, {"clip.vision_model."}, opts.dtype, config_path);
  torch::nn::Linear projection{nullptr};
  if (cfg.prefix_input == "image_embeds") {
    projection = make_visual_projection(cfg.clip);
    load_part(*projection, src, {"clip.visual_projection."}, opts.dtype, config_path);
  }
  Mapping mapping(cfg.mapping);
  load_part(*mapping, src, {"mapping."}, opts.dtype, config_path);
  GPT2 gpt2(cfg.gpt2);
  load_part(*gpt2, src, {"gpt2."}, opts.dtype, config_path);
  load_lm_head(*gpt2, src, "gpt2.lm_head.weight", opts.dtype);

  Captioner c(std::move(cfg), vision, projection, mapping, gpt2, load_tokenizer(dir), ImageProcessor::from_dir(dir), dir);
  c.to(opts.device, opts.dtype);
  if (opts.int8_weights) c.quantize_int8();
  if (opts.frozen) c.freeze_weights();
  return c;
}

void Captioner::freeze_weights() {
  freeze_weights_for_inference(*vision_model_);
  if (visual_projection_) freeze_weights_for_inference(*visual_projection_);
  freeze_weights_for_inference(*mapping_);
  freeze_weights_for_inference(*gpt2_);
}

void Captioner::quantize_int8() {
  if (int8_weights_) return;
  if (device_ != torch::kCPU) throw Error("int8 weights run on the CPU only (the model is on " + device_.str() + ")");
  quantize_linears_int8(*vision_model_);
  if (visual_projection_) quantize_linears_int8(*visual_projection_);
  quantize_linears_int8(*mapping_);
  quantize_linears_int8(*gpt2_);
  int8_weights_ = true;
}

Captioner Captioner::create(const std::string& clip_dir, const std::string& gpt2_dir, const MappingConfig& mapping_cfg,
                            const CaptionerCreateOptions& opts) {
  GPT2LoadOptions gpt2_opts;
  gpt2_opts.dtype = opts.dtype;
  GPT2 gpt2 = load_gpt2(gpt2_dir, gpt2_opts);
  return assemble(clip_dir, gpt2, load_tokenizer(gpt2_dir), gpt2_dir, mapping_cfg, opts);
}

Captioner Captioner::create_with_new_decoder(const std::string& clip_dir, const GPT2Config& gpt2_cfg,
                                             const std::string& tokenizer_dir, const MappingConfig& mapping_cfg,
                                             const CaptionerCreateOptions& opts) {
  auto tokenizer = load_tokenizer(tokenizer_dir);
  if (tokenizer->vocab_size() != gpt2_cfg.vocab_size)
    throw Error(tokenizer_dir + ": the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                " tokens but the decoder config says vocab_size " + std::to_string(gpt2_cfg.vocab_size));
  if (tokenizer->eos_id() != gpt2_cfg.eos_token_id)
    throw Error(tokenizer_dir + ": the tokenizer's eos id " + std::to_string(tokenizer->eos_id()) +
                " differs from the decoder config's eos_token_id " + std::to_string(gpt2_cfg.eos_token_id));
  GPT2 gpt2(gpt2_cfg);
  gpt2->to(opts.dtype);
  return assemble(clip_dir, gpt2, std::move(tokenizer), tokenizer_dir, mapping_cfg, opts);
}

Captioner Captioner::assemble(const std::string& clip_dir, GPT2 gpt2, std::unique_ptr<Tokenizer> tokenizer,
                              const std::string& tokenizer_dir, const MappingConfig& mapping_cfg,
                              const CaptionerCreateOptions& opts) {
  check_prefix_input(opts.prefix_input, "captioner options");
  CLIPLoadOptions clip_opts;
  clip_opts.dtype = opts.dtype;
  clip_opts.with_text = false;
  CLIPModel clip = load_clip(clip_dir, clip_opts);

  CaptionerConfig cfg;
  cfg.clip = clip->config;
  cfg.gpt2 = gpt2->config;
  cfg.prefix_input = opts.prefix_input;
  cfg.normalize_prefix_input = opts.normalize_prefix_input;
  cfg.tokenizer = tokenizer->kind();
  if (cfg.prefix_input == "image_embeds" && !clip->visual_projection)
    throw Error(clip_dir + ": prefix_input image_embeds needs a CLIP model with visual_projection");
  cfg.mapping = mapping_cfg;
  cfg.mapping.input_size = cfg.prefix_input_size();
  cfg.mapping.output_size = cfg.gpt2.n_embd;
  cfg.mapping.validate(clip_dir + ", " + tokenizer_dir);

  Mapping mapping(cfg.mapping);
  mapping->to(opts.dtype);
  torch::nn::Linear projection = cfg.prefix_input == "image_embeds" ? clip->visual_projection : torch::nn::Linear{nullptr};
  Captioner c(std::move(cfg), clip->vision_model, projection, mapping, gpt2, std::move(tokenizer),
              ImageProcessor::from_dir(clip_dir), tokenizer_dir);
  c.to(opts.device, opts.dtype);
  return c;
}

// ---- saving ------------------------------------------------------------------------------------

std::vector<std::pair<std::string, torch::Tensor>> Captioner::named_weights() const {
  NamedTensors all;
  auto add = [&](const NamedTensors& part) { all.insert(all.end(), part.begin(), part.end()); };
  add(collect_weights(*vision_model_, "clip.vision_model."));
  if (visual_projection_) add(collect_weights(*visual_projection_, "clip.visual_projection."));
  add(collect_weights(*mapping_, "mapping."));
  add(collect_weights(*gpt2_, "gpt2.", {{"lm_head", "lm_head.weight"}}));
  return all;
}

void Captioner::save(const std::string& dir, const std::function<void(const std::string&)>& add_files) {
  if (int8_weights_) throw Error(dir + ": a captioner loaded with int8 weights cannot be saved (load it in f32 or bf16)");
  const fs::path target = fs::path(dir).lexically_normal();
  const fs::path name = target.filename().empty() ? target.parent_path() : target;
  const fs::path tmp = name.string() + ".tmp";
  if (fs::exists(name)) {
    if (!fs::is_directory(name)) throw Error(dir + ": exists and is not a directory; not replacing it");
    bool empty = fs::is_empty(name);
    bool ours = false;
    if (fs::exists(name / "config.json")) {
      try {
        auto j = read_json((name / "config.json").string());
        ours = j.is_object() && j.contains("format") && j["format"] == "clipcap";
      } catch (const Error&) {
      }
    }
    if (!empty && !ours) throw Error(dir + ": exists and is not a clipcap model directory; not replacing it");
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  try {
    write_json_atomic((tmp / "config.json").string(), cfg_.to_json());
    write_json_atomic((tmp / "preprocessor_config.json").string(), processor_.config().to_json());
    NamedTensors weights = named_weights();
    for (auto& w : weights) w.second = w.second.to(torch::kCPU).contiguous();
    save_safetensors((tmp / "model.safetensors").string(), weights, {{"format", "pt"}});
    for (const auto& file : tokenizer_file_names()) {
      fs::path from = fs::path(tokenizer_dir_) / file;
      if (fs::exists(from)) fs::copy_file(from, tmp / file, fs::copy_options::overwrite_existing);
    }
    if (add_files) add_files(tmp.string());
    replace_directory(tmp.string(), name.string());
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(dir + ": cannot save the model: " + e.code().message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  tokenizer_dir_ = name.string();
}

// ---- captioning --------------------------------------------------------------------------------

torch::Tensor Captioner::embed_images(const torch::Tensor& pixel_values) {
  torch::NoGradGuard no_grad;
  auto pooled = vision_model_->pooled(pixel_values.to(device_, dtype_));  // (B, Dv)
  if (cfg_.prefix_input == "image_embeds") pooled = linear_forward(visual_projection_, pooled);  // (B, P)
  return pooled.to(torch::kFloat32);
}

torch::Tensor Captioner::prefix(const torch::Tensor& embeds) {
  auto x = embeds.to(device_, dtype_);                                         // (B, Dc)
  if (cfg_.normalize_prefix_input) x = x / x.norm(2, -1, /*keepdim=*/true);
  return mapping_->forward(x);                                                 // (B, E, D)
}

namespace {
void check_embeddings(const torch::Tensor& embeds, int64_t width) {
  if (embeds.dim() != 2 || embeds.size(1) != width)
    throw Error("captioner: image embeddings must be (B, " + std::to_string(width) + "), got " +
                shape_string(embeds.sizes().vec()));
}
}  // namespace

namespace {

// Token ids -> the caption observer's texts and captions.
Caption caption_of(const Generated& g, std::string text) {
  Caption c;
  c.text = std::move(text);
  c.logprob = g.logprob;
  c.scored_tokens = g.scored_tokens;
  c.tokens = static_cast<int64_t>(g.tokens.size());
  return c;
}

class TextObserver : public GenerationObserver {
 public:
  TextObserver(CaptionObserver& out, std::function<std::string(const std::vector<int64_t>&)> text)
      : out_(out), text_(std::move(text)) {}
  void token(int64_t row, const std::vector<int64_t>& tokens) override { out_.partial(static_cast<size_t>(row), text_(tokens)); }
  void finished(int64_t row, const Generated& g) override { out_.finished(static_cast<size_t>(row), caption_of(g, text_(g.tokens))); }

 private:
  CaptionObserver& out_;
  std::function<std::string(const std::vector<int64_t>&)> text_;
};

}  // namespace

std::vector<Caption> Captioner::captions_for(const torch::Tensor& embeds, const DecodeOptions& opts,
                                             CaptionObserver* observer, const std::vector<uint64_t>& row_seeds) {
  torch::NoGradGuard no_grad;
  check_embeddings(embeds, cfg_.mapping.input_size);
  std::vector<Caption> out;
  if (cfg_.legacy) {
    for (auto& tokens : generate_tokens(embeds, opts)) {
      Caption c;
      c.text = text(tokens);
      out.push_back(std::move(c));
    }
    if (observer)
      for (size_t i = 0; i < out.size(); ++i) observer->finished(i, out[i]);
    return out;
  }
  std::unique_ptr<TextObserver> texts;
  if (observer) texts = std::make_unique<TextObserver>(*observer, [this](const std::vector<int64_t>& t) { return text(t); });
  for (auto& g : generate_scored(gpt2_, prefix(embeds), opts, tokenizer_->eos_id(), texts.get(), row_seeds))
    out.push_back(caption_of(g, text(g.tokens)));
  return out;
}

std::vector<std::vector<Caption>> Captioner::candidates_for(const torch::Tensor& embeds, const DecodeOptions& opts,
                                                            int64_t n, const std::vector<uint64_t>& row_seeds) {
  torch::NoGradGuard no_grad;
  check_embeddings(embeds, cfg_.mapping.input_size);
  if (cfg_.legacy)
    throw Error("legacy (imported upstream) models caption greedily like upstream; they write no candidates to rerank");
  std::vector<std::vector<Caption>> out;
  for (auto& list : generate_candidates(gpt2_, prefix(embeds), opts, tokenizer_->eos_id(), n, row_seeds)) {
    out.emplace_back();
    for (auto& g : list) out.back().push_back(caption_of(g, text(g.tokens)));
  }
  return out;
}

std::vector<std::vector<int64_t>> Captioner::generate_tokens(const torch::Tensor& embeds, const DecodeOptions& opts) {
  torch::NoGradGuard no_grad;
  check_embeddings(embeds, cfg_.mapping.input_size);
  auto pre = prefix(embeds);  // (B, E, D)
  if (!cfg_.legacy) return generate(gpt2_, pre, opts, tokenizer_->eos_id());

  opts.validate();
  if (opts.strategy != "greedy" || opts.min_len != 0 || opts.no_repeat_ngram_size != 0)
    throw Error("legacy (imported upstream) models caption greedily like upstream; beam search, sampling, "
                "min_len and no-repeat-ngram are not available for them");
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < pre.size(0); ++b) out.push_back(legacy_generate(*gpt2_, pre[b], opts.max_len));
  return out;
}

std::string Captioner::text(const std::vector<int64_t>& tokens) const {
  if (cfg_.legacy) return legacy_caption_text(*tokenizer_, tokens);
  DecodeTextOptions o;
  o.skip_special = true;
  o.clean_up_spaces = false;
  return python_strip(tokenizer_->decode(tokens, o));
}

std::vector<std::string> Captioner::caption_embeddings(const torch::Tensor& embeds, const DecodeOptions& opts) {
  std::vector<std::string> captions;
  for (auto& c : captions_for(embeds, opts)) captions.push_back(std::move(c.text));
  return captions;
}

std::vector<std::string> Captioner::caption_images(const std::vector<Image>& images, const DecodeOptions& opts) {
  if (images.empty()) return {};
  std::vector<torch::Tensor> pixels;
  pixels.reserve(images.size());
  for (const auto& img : images) pixels.push_back(processor_.preprocess(img));  // (3, H, W)
  return caption_embeddings(embed_images(torch::stack(pixels)), opts);
}

}  // namespace clipcap
