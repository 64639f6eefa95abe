// One caption and the scores behind it: what every captioning path returns (the local model's
// Captioner, and caption backends, backend/caption_backend.h).
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace clipcap {

// Reranked decoding's scores of a caption (model/clip_reranker.h): the chosen candidate's cosine
// with the image in the reranking CLIP's space, its rerank score, how many candidates it was chosen
// from, and its mean token log-probability (candidates 0: not reranked).
struct RerankScores {
  double clip_similarity = std::numeric_limits<double>::quiet_NaN();
  double rerank_score = std::numeric_limits<double>::quiet_NaN();
  int64_t candidates = 0;
  double mean_logprob = std::numeric_limits<double>::quiet_NaN();
};

struct Caption {
  std::string text;
  // Sum of the log-probabilities of the caption's tokens (the EOS included when one was written);
  // NaN when the captioner does not know it (legacy models, remote backends without logprobs).
  double logprob = std::numeric_limits<double>::quiet_NaN();
  int64_t scored_tokens = 0;  // tokens that sum covers
  int64_t tokens = 0;         // tokens written, the EOS not counted (scored_tokens > tokens: an EOS ended it)
  int64_t prompt_tokens = 0;  // remote backends: the prompt's tokens as the endpoint counted them (usage)
  RerankScores rerank;  // reranked decoding only
  // Non-empty: this request got no caption and text is empty (a remote backend gave up on it after
  // its retries; "<endpoint>: <problem>"). Batch callers record it and go on.
  std::string error;

  double mean_logprob() const {
    return scored_tokens > 0 ? logprob / static_cast<double>(scored_tokens) : std::numeric_limits<double>::quiet_NaN();
  }
};

// Told about captions while a batch is generated, by request index: the text so far (when the
// strategy writes token by token) and each caption as soon as it is complete.
class CaptionObserver {
 public:
  virtual ~CaptionObserver() = default;
  virtual void partial(size_t i, const std::string& text_so_far) {}
  virtual void finished(size_t i, const Caption& caption) {}
};

}  // namespace clipcap
