// The captioner's training examples, batches, objective and freeze policies.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "tests/test_support.h"
#include "tests/test_train_support.h"
#include "train/caption_batches.h"
#include "train/caption_objective.h"
#include "train/freeze_policy.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

namespace {

// The fixture CLIP and GPT-2 behind a fresh mapping of `layers` transformer layers, 4 heads.
clipcap::Captioner fixture_captioner(int64_t layers, int64_t ep_len = clipcap::MappingConfig().ep_len) {
  clipcap::MappingConfig m;
  m.ep_len = ep_len;
  m.num_layers = layers;
  m.n_heads = 4;
  return clipcap::Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), m);
}

}  // namespace

TEST(CaptionBatches, EosAppendedPaddingIgnoredShuffleDeterministic) {
  auto tok = clipcap::load_tokenizer(fixture("tiny-gpt2"));
  const std::string data = make_dataset("batches", 3, 1);
  clipcap::EmbeddingDataset ds(data);
  clipcap::CaptionTextOptions t;
  t.max_tokens = 5;
  auto ex = clipcap::make_caption_examples(ds, "train", *tok, t);
  ASSERT_EQ(ex.size(), 3u);
  for (const auto& e : ex) {
    EXPECT_EQ(e.tokens.back(), tok->eos_id());
    EXPECT_LE(e.tokens.size(), 5u);
  }
  EXPECT_EQ(clipcap::shuffled_order(50, 1, 3), clipcap::shuffled_order(50, 1, 3));
  EXPECT_NE(clipcap::shuffled_order(50, 1, 3), clipcap::shuffled_order(50, 1, 4));
  auto b = clipcap::collate(ex, {0, 1, 2}, 0, 3, ds.embeddings());
  EXPECT_EQ(b.tokens.size(1), 5);
  EXPECT_EQ(b.n_tokens, 15);
  EXPECT_EQ(clipcap::normalize_caption("  A Dog. \n", {true, true, 40}), "a dog.");
}

TEST(CaptionObjective, LastPrefixSlotPredictsTheFirstTokenAndWpeIsAddedOnce) {
  auto cap = fixture_captioner(1, /*ep_len=*/3);
  torch::NoGradGuard no_grad;
  clipcap::CaptionBatch b;
  b.embeds = torch::randn({1, cap.config().mapping.input_size});
  b.tokens = torch::tensor({{464, 3290, 50256}}, torch::kLong);
  b.targets = b.tokens.clone();
  b.n_tokens = 3;
  torch::Tensor got = clipcap::caption_token_losses(cap, b);  // (1, 3)

  // By hand: inputs [prefix (3 rows), wte(464), wte(3290)]; positions 2, 3, 4 predict the 3 tokens.
  torch::Tensor prefix = cap.prefix(b.embeds);  // (1, 3, D)
  torch::Tensor x = torch::cat({prefix, cap.gpt2()->wte->weight.index_select(0, torch::tensor({464, 3290})).unsqueeze(0)}, 1);
  torch::Tensor logits = cap.gpt2()->logits(cap.gpt2()->forward(x));  // (1, 5, V)
  torch::Tensor logp = torch::log_softmax(logits[0], -1);
  for (int t = 0; t < 3; ++t)
    EXPECT_NEAR(got[0][t].item<double>(), -logp[2 + t][b.tokens[0][t].item<int64_t>()].item<double>(), 1e-5) << t;
}

TEST(CaptionObjective, BatchLossEqualsEachImageAlone) {
  auto cap = fixture_captioner(2);
  auto tok = clipcap::load_tokenizer(fixture("tiny-gpt2"));
  const std::string data = make_dataset("batch-alone", 4, 0);
  clipcap::EmbeddingDataset ds(data);
  auto ex = clipcap::make_caption_examples(ds, "train", *tok, {});
  torch::NoGradGuard no_grad;
  auto all = clipcap::collate(ex, {0, 1, 2, 3}, 0, 4, ds.embeddings());
  torch::Tensor batched = clipcap::caption_token_losses(cap, all);  // (4, T)
  double sum = 0;
  for (size_t i = 0; i < 4; ++i) {
    auto one = clipcap::collate(ex, {0, 1, 2, 3}, i, i + 1, ds.embeddings());
    torch::Tensor alone = clipcap::caption_token_losses(cap, one);  // (1, Ti)
    EXPECT_TRUE(tensors_near(batched[i].slice(0, 0, alone.size(1)), alone[0], 1e-5)) << "image " << i;
    sum += alone.sum().item<double>();
  }
  EXPECT_NEAR(clipcap::caption_loss(cap, all).item<double>(), sum / all.n_tokens, 1e-5);
}

TEST(FreezePolicy, UpstreamTrainsMappingEmbeddingsFirstLastBlockAndLnF) {
  auto cap = fixture_captioner(1);
  clipcap::apply_freeze_policy(cap, "upstream");
  const int64_t last = cap.gpt2()->config.n_layer - 1;
  for (auto& p : cap.gpt2()->named_parameters()) {
    const std::string& n = p.key();
    const bool want = n.rfind("wte", 0) == 0 || n.rfind("wpe", 0) == 0 || n.rfind("ln_f", 0) == 0 ||
                      n.rfind("h.0.", 0) == 0 || n.rfind("h." + std::to_string(last) + ".", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), want) << n;
  }
  for (auto& p : cap.vision_model()->parameters()) EXPECT_FALSE(p.requires_grad());
  auto only = clipcap::apply_freeze_policy(cap, "mapping-only");
  EXPECT_EQ(only.size(), cap.mapping()->parameters().size());
  expect_error([&] { clipcap::apply_freeze_policy(cap, "half"); }, {"half"});
}
