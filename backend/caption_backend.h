// The seam between the pipelines (clipcap-infer image and video, clipcap-eval) and whatever writes
// the captions: images or video frames in, captions with their scores out, in the batch sizes the
// backend prefers. The local CLIP-prefix model (backend/local_backend.h) is one implementation.
//
//   std::unique_ptr<CaptionBackend> b = ...;                  // backend/backend_flags.h load_backend()
//   std::vector<Caption> c = b->caption_images(images, decoding);   // one caption per image
//
// Pipelines that batch each stage on its own (the video pipeline) use the three steps:
//   prepare  one image -> a payload, on any thread (the local model: CLIP preprocessing, run on the
//            video decoder's thread);
//   encode   prepared payloads -> one payload per image, image_batch() at a time (the local model:
//            CLIP embeddings);
//   caption  requests -> one caption each, caption_batch() at a time; a request is the encoded
//            payloads of one or more images described together (a scene's frames; the local
//            model captions their mean embedding).
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "image/image_io.h"
#include "model/caption.h"
#include "model/decode_options.h"

namespace clipcap {

// What a backend carries of one image from one step to the next; only the backend that made it
// reads it.
struct ImagePayload {
  torch::Tensor tensor;  // the local model: (3, H, W) pixel values, then the (D) embedding
  std::string bytes;     // encoded data for backends that send images elsewhere
  // The local model reranking with a CLIP of another vision tower: that CLIP's pixel values, then
  // its (P) unit image embedding.
  torch::Tensor rerank_tensor;
};

// Kind and width of the CLIP embeddings a backend's encode() produces, when those are what
// clipcap-data build stores: evaluation can then caption a dataset's stored rows directly.
struct EmbeddingSpace {
  std::string kind;  // pooler_output | image_embeds
  int64_t dim = 0;
};

// Thrown by a backend that can caption nothing at all (a remote endpoint that refuses the API key,
// has no such path, or does not answer in the API's shape): batch callers stop with it instead of
// recording it against every item.
class BackendUnavailable : public Error {
 public:
  using Error::Error;
};

// The scores behind a reranked caption, for every JSON output (images, cues, eval records, the
// server): {"clip_similarity", "rerank_score", "candidates", "mean_logprob"}; null when the caption
// was not reranked.
nlohmann::json rerank_json(const RerankScores& r);

class CaptionBackend {
 public:
  virtual ~CaptionBackend() = default;

  // What produced the captions, recorded in reports and outputs ({"backend": "local", "dir", "name", ...}).
  virtual nlohmann::json describe() const = 0;
  virtual int image_batch() const = 0;    // images per encode() it runs best at
  virtual int caption_batch() const = 0;  // requests per caption() it runs best at

  virtual ImagePayload prepare(const Image& image) const = 0;  // thread-safe
  virtual std::vector<ImagePayload> encode(std::vector<ImagePayload> prepared) = 0;
  // observer (optional): each request's text as it grows and its caption as soon as it is done,
  // for callers that answer before the whole batch ends (the caption server).
  // seeds (optional, sampling): request i samples with seeds[i] in place of opts.seed, so requests
  // that differ only in their seed are captioned in one call (the caption server's batches).
  virtual std::vector<Caption> caption(const std::vector<std::vector<const ImagePayload*>>& requests,
                                       const DecodeOptions& opts, CaptionObserver* observer = nullptr,
                                       const std::vector<uint64_t>& seeds = {}) = 0;

  // Requests with an instruction each (the video pipeline's prompt templates, filled per request).
  // Backends that read instructions (remote vision-language models) override this; the default
  // captions without them: a CLIP-prefix model has no use for text input.
  virtual bool reads_prompts() const { return false; }
  virtual std::vector<Caption> caption_with_prompts(const std::vector<std::vector<const ImagePayload*>>& requests,
                                                    const std::vector<std::string>& prompts, const DecodeOptions& opts) {
    return caption(requests, opts);
  }

  // Set when encode() gives payloads whose tensor is a (D) float32 CLIP embedding of this kind;
  // caption() then also takes payloads made from stored embeddings of that kind.
  virtual std::optional<EmbeddingSpace> embedding_space() const { return std::nullopt; }

  // Images -> one caption each: prepare, encode and caption in the preferred batch sizes.
  std::vector<Caption> caption_images(const std::vector<Image>& images, const DecodeOptions& opts);
};

}  // namespace clipcap
