// What `clipcap-train clip` trains: the CLIP architecture, the tokenizer size and the schedule, read
// from a JSON file (configs/clip-emoji-tiny.json) whose fields the command-line flags override.
//
//   clipcap::ClipTrainConfig cfg = clipcap::ClipTrainConfig::load("configs/clip-emoji-tiny.json");
//   cfg.training.epochs = 5;                       // a flag
//   cfg.validate("--epochs");                      // Error names the file or flag and the field
//   clipcap::CLIPConfig hf = cfg.clip_config(vocab.size(), vocab.bos_id(), vocab.eos_id());
//
// File layout (every field optional; the defaults below are the emoji-tiny recipe):
//   {"vision": {"image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
//               "intermediate_size"},
//    "text": {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
//             "max_position_embeddings"},
//    "projection_dim", "hidden_act",
//    "tokenizer": {"vocab_size", "min_frequency"},
//    "training": {"epochs", "batch_size", "lr", "warmup", "weight_decay", "beta1", "beta2", "seed",
//                 "shift", "scale", "blur", "posterize"}}
// Unknown fields are errors (a typo must not silently train the default).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "model/clip.h"
#include "train/bpe_trainer.h"
#include "train/image_augment.h"

namespace clipcap {

struct ClipTowerShape {
  int64_t hidden_size = 128;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t intermediate_size = 512;
};

struct ClipVisionShape : ClipTowerShape {
  int64_t image_size = 32;  // the processor resizes + centre-crops every image to this
  int64_t patch_size = 8;
};

struct ClipTextShape : ClipTowerShape {
  ClipTextShape() { num_hidden_layers = 3; }
  int64_t max_position_embeddings = 24;  // context length: bos + tokens + eos (longer captions are cut)
};

struct ClipSchedule {
  int64_t epochs = 20;          // passes over the training images
  int64_t batch_size = 256;     // images per step (the contrastive negatives)
  double lr = 1e-3;             // peak AdamW learning rate
  double warmup = 0.05;         // fraction of all steps with a linear rise to lr, then cosine to 0
  double weight_decay = 0.1;    // AdamW, on 2-D+ weights only (not biases, norms, class_embedding, logit_scale)
  double beta1 = 0.9, beta2 = 0.98;
  uint64_t seed = 100;          // initial weights, shuffling, caption choice, augmentation
  // Augmentation (train/image_augment.h), each 0 = off:
  int64_t shift = 2;            // random translation of up to +-shift pixels
  double scale = 0;             // zoom by a factor in [1 - scale, 1 + scale]
  double blur = 0;              // probability of a 3 x 3 blur
  double posterize = 0;         // probability of quantising colours to 3-5 bits per channel
  AugmentationSettings augmentation() const { return {shift, scale, blur, posterize}; }
};

struct ClipTrainConfig {
  ClipVisionShape vision;
  ClipTextShape text;
  int64_t projection_dim = 128;
  std::string hidden_act = "quick_gelu";  // quick_gelu | gelu | gelu_new
  BpeTrainOptions tokenizer{2048, 2};
  ClipSchedule training;

  static ClipTrainConfig load(const std::string& path);  // Error: file, field, problem
  static ClipTrainConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  void validate(const std::string& where) const;
  // The HF CLIPConfig for a vocabulary of vocab_size ids (pad = eos, as CLIP's tokenizer pads).
  CLIPConfig clip_config(int64_t vocab_size, int64_t bos_id, int64_t eos_id) const;
};

}  // namespace clipcap
