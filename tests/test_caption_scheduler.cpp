// The caption server's scheduler on a backend that records its calls: which requests generate
// together, and with which seeds.
#include <gtest/gtest.h>

#include <mutex>

#include "serve/caption_scheduler.h"

namespace clipcap {
namespace {

// Captions each request "<strategy> t=<temperature> seed=<seed>", recording every caption() call.
class RecordingBackend : public CaptionBackend {
 public:
  struct Call {
    DecodeOptions opts;
    std::vector<uint64_t> seeds;
    size_t requests = 0;
  };
  nlohmann::json describe() const override { return {{"backend", "recording"}}; }
  int image_batch() const override { return 16; }
  int caption_batch() const override { return 16; }
  ImagePayload prepare(const Image&) const override { return {}; }
  std::vector<ImagePayload> encode(std::vector<ImagePayload> prepared) override { return prepared; }
  std::vector<Caption> caption(const std::vector<std::vector<const ImagePayload*>>& requests, const DecodeOptions& opts,
                               CaptionObserver*, const std::vector<uint64_t>& seeds) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back({opts, seeds, requests.size()});
    std::vector<Caption> out(requests.size());
    for (size_t i = 0; i < out.size(); ++i)
      out[i].text = opts.strategy + " t=" + std::to_string(opts.temperature) +
                    " seed=" + std::to_string(seeds.empty() ? opts.seed : seeds.at(i));
    return out;
  }
  std::mutex mu;
  std::vector<Call> calls;
};

CaptionRequest request(const std::string& strategy, uint64_t seed, int n = 1, float temperature = 0.9f) {
  CaptionRequest r;
  Image image;
  image.width = image.height = 1;
  image.pixels = {1, 2, 3};
  r.images.push_back(image);
  r.decoding.strategy = strategy;
  r.decoding.temperature = temperature;
  r.decoding.seed = seed;
  r.n = n;
  return r;
}

std::string text(const std::string& strategy, float temperature, uint64_t seed) {
  return strategy + " t=" + std::to_string(temperature) + " seed=" + std::to_string(seed);
}

// A request's n samples were n generation batches of one row each (one per seed); now they are one.
TEST(CaptionScheduler, ARequestsSampledChoicesGenerateAsOneBatchEachWithItsSeed) {
  RecordingBackend backend;
  CaptionScheduler scheduler(backend, {.max_batch = 8, .max_wait = std::chrono::milliseconds(1)});
  Answer a = scheduler.submit(request("sample", 11, 3)).answer.get();
  ASSERT_EQ(a.choices.size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(a.choices[static_cast<size_t>(c)].text, text("sample", 0.9f, 11 + c));
  ASSERT_EQ(backend.calls.size(), 1u);
  EXPECT_EQ(backend.calls[0].seeds, (std::vector<uint64_t>{11, 12, 13}));
}

TEST(CaptionScheduler, RequestsThatDifferOnlyInTheirSeedShareABatchOthersDoNot) {
  RecordingBackend backend;
  {
    // max_batch 4: the first request waits (up to 2 s) until all four rows are queued.
    CaptionScheduler scheduler(backend, {.max_batch = 4, .max_wait = std::chrono::milliseconds(2000)});
    Ticket a = scheduler.submit(request("sample", 5));
    Ticket b = scheduler.submit(request("sample", 9));
    Ticket c = scheduler.submit(request("sample", 5, 1, 0.5f));  // another temperature: its own batch
    Ticket d = scheduler.submit(request("greedy", 3));           // greedy: the seed plays no part
    EXPECT_EQ(a.answer.get().choices[0].text, text("sample", 0.9f, 5));
    EXPECT_EQ(b.answer.get().choices[0].text, text("sample", 0.9f, 9));
    EXPECT_EQ(c.answer.get().choices[0].text, text("sample", 0.5f, 5));
    EXPECT_EQ(d.answer.get().choices[0].text.rfind("greedy", 0), 0u);
  }
  ASSERT_EQ(backend.calls.size(), 3u);
  size_t shared = 0;
  for (const auto& call : backend.calls) {
    EXPECT_EQ(call.seeds.size(), call.requests);
    if (call.requests == 2) {
      ++shared;
      EXPECT_EQ(call.opts.temperature, 0.9f);
      EXPECT_EQ(call.seeds, (std::vector<uint64_t>{5, 9}));
    }
  }
  EXPECT_EQ(shared, 1u);
}

}  // namespace
}  // namespace clipcap
