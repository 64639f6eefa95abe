// The prefix captioner: CLIP vision tower -> mapping -> GPT-2, loaded from one model directory.
//
//   auto cap = clipcap::Captioner::load("runs/small/best");            // {dtype, device} optional
//   std::vector<clipcap::Image> imgs = {clipcap::read_image("dog.jpg")};
//   std::vector<std::string> captions = cap.caption_images(imgs, cap.config().decoding);
//
//   // a fresh model for training: HF CLIP + HF GPT-2 directories, new mapping
//   auto fresh = clipcap::Captioner::create("clip-vit-base-patch32", "gpt2", clipcap::MappingConfig{});
//   fresh.save("runs/small/init");
//
// ## The native model directory (format_version 1)
//
//   config.json               {"format": "clipcap", "format_version": 1,
//                              "clip": <HF CLIPConfig>, "gpt2": <HF GPT2Config>,
//                              "mapping": {"ep_len", "num_layers", "n_heads", "forward_expansion", "dropout"},
//                              "prefix_input": "pooler_output" | "image_embeds",
//                              "normalize_prefix_input": bool,   // L2-normalise the CLIP vector first
//                              "legacy": bool,                   // upstream's captioning algorithm
//                              "decoding": {DecodeOptions defaults, e.g. "max_len": 40},
//                              "tokenizer": "gpt2-bpe" | "sentencepiece"}
//   preprocessor_config.json  HF CLIPImageProcessor settings
//   model.safetensors         clip.vision_model.*  (HF CLIPVisionTransformer names)
//                             clip.visual_projection.weight  (only when prefix_input is image_embeds)
//                             mapping.*            (transformer_encoder.layers.N..., mapper.*)
//                             gpt2.*               (wte, wpe, h.N..., ln_f; lm_head.weight only if untied)
//   vocab.json + merges.txt   (gpt2-bpe) or tokenizer.model (sentencepiece)
//
// The mapping's input width is CLIP's hidden_size (pooler_output) or projection_dim
// (image_embeds); its output width is GPT-2's n_embd. save() writes DIR.tmp and renames it into
// place, so DIR is always either the old model or the complete new one.
//
// ## How captions are made
// Native (legacy false): GPT-2 reads the ep_len prefix embeddings as inputs_embeds (no BOS; GPT-2
// adds wpe once) and decode() writes the caption (greedy, sampling or beam search); training must
// use the same layout: [prefix, caption tokens, EOS], the last prefix slot predicting the first
// token. Text = tokenizer decode with special tokens skipped and WITHOUT HF's clean_up_tokenization
// (the caption is what the model wrote, " ." included), then Python-style strip(); no case change.
// Legacy (legacy true, from import_upstream): upstream's algorithm exactly, see legacy_captioner.h;
// only greedy decoding with max_len applies.
#pragma once

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "image/image_io.h"
#include "model/caption.h"
#include "model/clip.h"
#include "model/decode_options.h"
#include "model/gpt2.h"
#include "model/image_processor.h"
#include "model/mapping.h"
#include "model/tokenizers/tokenizer.h"

namespace clipcap {

constexpr int kCaptionerFormatVersion = 1;

struct CaptionerConfig {
  CLIPConfig clip;
  GPT2Config gpt2;
  MappingConfig mapping;                     // widths filled from clip/gpt2 and prefix_input
  std::string prefix_input = "pooler_output";  // pooler_output (CLIP width) | image_embeds (projection_dim)
  bool normalize_prefix_input = false;       // divide the CLIP vector by its L2 norm first
  bool legacy = false;                       // upstream's captioning algorithm (imported checkpoints)
  DecodeOptions decoding;                    // the model's default decoding options
  std::string tokenizer = "gpt2-bpe";        // gpt2-bpe | sentencepiece

  int64_t prefix_input_size() const;  // the mapping's input width
  // where: the config.json path, for errors. Rejects other formats with a message saying what
  // the directory looks like instead.
  static CaptionerConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

struct CaptionerLoadOptions {
  torch::ScalarType dtype = torch::kFloat32;  // weights and activations (bf16: faster on new CPUs)
  torch::Device device = torch::kCPU;
  // Linear weights and the LM head quantised to int8 after loading (model/quantize.h); activations
  // stay in dtype. Inference only: such a captioner cannot be saved.
  bool int8_weights = false;
  // Inference only: the weights are declared constant (Captioner::freeze_weights), so products may
  // read copies in the kernels' layout. Not for a captioner that is going to be trained.
  bool frozen = false;
};

struct CaptionerCreateOptions {
  std::string prefix_input = "pooler_output";  // or image_embeds
  bool normalize_prefix_input = false;
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
};

class Captioner {
 public:
  static Captioner load(const std::string& dir, const CaptionerLoadOptions& opts = {});
  // A new model from an HF CLIP directory and an HF GPT-2 directory (weights, tokenizer, image
  // processor taken from them); the mapping is freshly initialised from `mapping` (its widths are
  // set here).
  static Captioner create(const std::string& clip_dir, const std::string& gpt2_dir, const MappingConfig& mapping,
                          const CaptionerCreateOptions& opts = {});
  // The same with a randomly initialised decoder of architecture `gpt2` (GPT2Impl::reset_parameters)
  // and the tokenizer in tokenizer_dir (e.g. a SentencePiece model trained on the captions); the
  // config's vocab_size and bos/eos ids must match the tokenizer.
  static Captioner create_with_new_decoder(const std::string& clip_dir, const GPT2Config& gpt2,
                                           const std::string& tokenizer_dir, const MappingConfig& mapping,
                                           const CaptionerCreateOptions& opts = {});
  // Assembles a captioner from loaded parts (import_upstream, tests). tokenizer_dir: where the
  // tokenizer files are, copied by save().
  Captioner(CaptionerConfig cfg, CLIPVisionTransformer vision_model, torch::nn::Linear visual_projection,
            Mapping mapping, GPT2 gpt2, std::unique_ptr<Tokenizer> tokenizer, ImageProcessor processor,
            std::string tokenizer_dir);

  // add_files, when given, writes more files (e.g. trainer state) into the staging directory
  // before it is renamed into place, so they appear atomically with the model.
  void save(const std::string& dir, const std::function<void(const std::string& staging_dir)>& add_files = nullptr);

  torch::Tensor embed_images(const torch::Tensor& pixel_values);  // (B, 3, H, W) -> (B, Dc) float32
  torch::Tensor prefix(const torch::Tensor& embeds);              // (B, Dc) -> (B, ep_len, D), model dtype
  std::vector<std::vector<int64_t>> generate_tokens(const torch::Tensor& embeds, const DecodeOptions& opts);
  // (B, Dc) embeddings -> B captions with their log-probabilities.
  // observer: told each caption's text as it grows and the caption when it ends.
  // row_seeds: empty, or one sampling seed per image in place of opts.seed (model/decoding.h).
  std::vector<Caption> captions_for(const torch::Tensor& embeds, const DecodeOptions& opts,
                                    CaptionObserver* observer = nullptr, const std::vector<uint64_t>& row_seeds = {});
  // n candidates per image (model/decoding.h generate_candidates; beam search's best first), for
  // reranking (model/clip_reranker.h). Not for legacy models.
  std::vector<std::vector<Caption>> candidates_for(const torch::Tensor& embeds, const DecodeOptions& opts, int64_t n,
                                                   const std::vector<uint64_t>& row_seeds = {});
  std::vector<std::string> caption_embeddings(const torch::Tensor& embeds, const DecodeOptions& opts);  // texts only
  std::vector<std::string> caption_images(const std::vector<Image>& images, const DecodeOptions& opts);
  std::string text(const std::vector<int64_t>& tokens) const;  // the caption for generated tokens

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ImageProcessor& processor() const { return processor_; }
  const CaptionerConfig& config() const { return cfg_; }
  void set_default_decoding(const DecodeOptions& opts) { cfg_.decoding = opts; }  // saved in config.json

  // The parts, for training and tools.
  CLIPVisionTransformer& vision_model() { return vision_model_; }
  torch::nn::Linear& visual_projection() { return visual_projection_; }  // null unless image_embeds
  Mapping& mapping() { return mapping_; }
  GPT2& gpt2() { return gpt2_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  bool int8_weights() const { return int8_weights_; }
  void quantize_int8();  // CaptionerLoadOptions::int8_weights, for a captioner already built
  void freeze_weights();  // CaptionerLoadOptions::frozen (freeze_weights_for_inference, every part)

  // Every weight under its model.safetensors name (clip.vision_model.*, mapping.*, gpt2.*).
  std::vector<std::pair<std::string, torch::Tensor>> named_weights() const;

 private:
  void to(torch::Device device, torch::ScalarType dtype);
  static Captioner assemble(const std::string& clip_dir, GPT2 gpt2, std::unique_ptr<Tokenizer> tokenizer,
                            const std::string& tokenizer_dir, const MappingConfig& mapping,
                            const CaptionerCreateOptions& opts);

  CaptionerConfig cfg_;
  CLIPVisionTransformer vision_model_{nullptr};
  torch::nn::Linear visual_projection_{nullptr};
  Mapping mapping_{nullptr};
  GPT2 gpt2_{nullptr};
  std::unique_ptr<Tokenizer> tokenizer_;
  ImageProcessor processor_;
  std::string tokenizer_dir_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
  bool int8_weights_ = false;
};

// The tokenizer files a model directory carries (those present are copied by save()).
const std::vector<std::string>& tokenizer_file_names();

}  // namespace clipcap
