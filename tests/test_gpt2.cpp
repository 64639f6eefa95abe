// GPT-2 against expected/gpt2.safetensors: full forwards, right-padded batch, inputs_embeds, the KV
// cache (incremental = full recompute, beam reordering), greedy decoding, both weight layouts,
// untied lm_head, gradients, bad directories. Every size comes from the fixture files.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/json_util.h"
#include "model/gpt2.h"
#include "model/kernels/inference_matmul.h"
#include "model/weights/safetensors.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using clipcap::test::expected;
using clipcap::test::fixture;

namespace {

const torch::Tensor& E(const std::string& name) { return clipcap::test::expected_tensor("gpt2.safetensors", name); }
bool has(const std::string& name) { return expected("gpt2.safetensors").count(name) > 0; }

constexpr double kTol = 1e-4;     // against the fixtures
constexpr double kKvTol = 1e-5;   // our KV cache against our own full recompute

// A copy of tiny-gpt2 with config.json and the given weights file stored as model.safetensors.
std::string gpt2_dir_with(const std::string& weights_file, const std::string& tag) {
  std::string dir = clipcap::test::temp_dir(tag);
  fs::copy_file(fixture("tiny-gpt2/config.json"), dir + "/config.json");
  fs::copy_file(fixture("tiny-gpt2/" + weights_file), dir + "/model.safetensors");
  return dir;
}

clipcap::GPT2& tiny_gpt2() {
  static clipcap::GPT2 model = clipcap::load_gpt2(fixture("tiny-gpt2"));
  return model;
}

using ::clipcap::test::expect_error;

torch::Tensor logsumexp_all(const torch::Tensor& logits) { return logits.logsumexp(-1); }
torch::Tensor subset(const torch::Tensor& logits) { return logits.index_select(-1, E("gpt2.vocab_subset")); }

// Greedy continuation of a prefix with the KV cache: HF generate(do_sample=False), no EOS stop.
torch::Tensor greedy(clipcap::GPT2& gpt2, const torch::Tensor& prefix_embeds, int64_t steps) {
  clipcap::KVCache cache;
  torch::Tensor h = gpt2->forward(prefix_embeds, {}, &cache);
  std::vector<int64_t> tokens;
  for (int64_t s = 0; s < steps; ++s) {
    torch::Tensor next = gpt2->logits(h.select(1, -1)).argmax(-1);  // (B)
    tokens.push_back(next.item<int64_t>());
    h = gpt2->forward(gpt2->embed(next.view({1, 1})), {}, &cache);
  }
  return torch::tensor(tokens).view({1, -1});
}

}  // namespace

TEST(GPT2Config, SizesComeFromConfigJson) {
  auto j = clipcap::read_json(fixture("tiny-gpt2/config.json"));
  auto cfg = clipcap::GPT2Config::from_json(j, "config.json");
  EXPECT_EQ(cfg.n_embd, j["n_embd"].get<int64_t>());
  EXPECT_EQ(cfg.n_layer, j["n_layer"].get<int64_t>());
  EXPECT_EQ(cfg.n_head, j["n_head"].get<int64_t>());
  EXPECT_EQ(cfg.vocab_size, j["vocab_size"].get<int64_t>());
  EXPECT_EQ(cfg.n_positions, j["n_positions"].get<int64_t>());
  const bool default_inner = !j.contains("n_inner") || j["n_inner"].is_null();
  EXPECT_EQ(cfg.inner(), default_inner ? 4 * cfg.n_embd : j["n_inner"].get<int64_t>());

  j["n_inner"] = 3 * cfg.n_embd;  // an explicit MLP width is honoured
  clipcap::GPT2 model(clipcap::GPT2Config::from_json(j, "config.json"));
  EXPECT_EQ(model->named_parameters()["h.0.mlp.c_fc.weight"].sizes().vec(),
            (std::vector<int64_t>{cfg.n_embd, 3 * cfg.n_embd}));

  auto again = clipcap::GPT2Config::from_json(cfg.to_json(), "again");
  EXPECT_EQ(again.to_json(), cfg.to_json());
}

TEST(GPT2Config, UnknownActivationIsNamed) {
  auto j = clipcap::read_json(fixture("tiny-gpt2/config.json"));
  j["activation_function"] = "gelu_newest";
  expect_error([&] { clipcap::GPT2Config::from_json(j, "x/config.json"); },
               {"x/config.json", "activation_function", "gelu_newest"});
}

// The hidden states, then the logits the fixture keeps of them (a subset, the logsumexp, the argmax),
// against fixture entries named `prefix` + "last_hidden_state", ...
void expect_like_fixture(clipcap::GPT2& gpt2, const torch::Tensor& h, const std::string& prefix) {
  EXPECT_TENSOR_NEAR(h, E(prefix + "last_hidden_state"), kTol) << prefix;
  torch::Tensor logits = gpt2->logits(h);
  EXPECT_TENSOR_NEAR(subset(logits), E(prefix + "logits_subset"), kTol) << prefix;
  EXPECT_TENSOR_NEAR(logsumexp_all(logits), E(prefix + "logsumexp"), kTol) << prefix;
  EXPECT_TENSOR_EQ(logits.argmax(-1), E(prefix + "argmax")) << prefix;
  if (has(prefix + "logits_last")) {
    EXPECT_TENSOR_NEAR(logits.select(1, -1), E(prefix + "logits_last"), kTol) << prefix;
  }
}

// The hub layout (no prefix, attn.bias buffers, tied lm_head) and the GPT2LMHeadModel layout
// (transformer. prefix, explicit lm_head) must give the same model.
class GPT2Layouts : public ::testing::TestWithParam<std::string> {};

TEST_P(GPT2Layouts, SingleSequencesMatchExpected) {
  torch::NoGradGuard no_grad;
  auto gpt2 = clipcap::load_gpt2(gpt2_dir_with(GetParam(), "gpt2-layout"));
  EXPECT_FALSE(gpt2->lm_head.defined()) << "a stored copy of wte must stay tied";
  int checked = 0;
  for (int i = 0; has("gpt2.seq" + std::to_string(i) + ".input_ids"); ++i, ++checked) {
    const std::string p = "gpt2.seq" + std::to_string(i) + ".";
    expect_like_fixture(gpt2, gpt2->forward(gpt2->embed(E(p + "input_ids"))), p);
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Files, GPT2Layouts, ::testing::Values("model.safetensors", "model_prefixed.safetensors"),
                         [](const auto& info) { return info.param == "model.safetensors" ? "hub" : "prefixed"; });

TEST(GPT2Golden, RightPaddedBatch) {
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  expect_like_fixture(gpt2, gpt2->forward(gpt2->embed(E("gpt2.batch.input_ids")), E("gpt2.batch.attention_mask")), "gpt2.batch.");
}

TEST(GPT2Golden, InputsEmbeds) {
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  expect_like_fixture(gpt2, gpt2->forward(E("gpt2.embeds.inputs_embeds")), "gpt2.embeds.");
}

TEST(GPT2KVCache, OneTokenAtATimeEqualsFullForward) {
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  const torch::Tensor& ids = E("gpt2.kv.input_ids");
  const int64_t T = ids.size(1);
  torch::Tensor full = gpt2->logits(gpt2->forward(gpt2->embed(ids)));  // (1, T, V)
  EXPECT_TENSOR_NEAR(full.select(1, -1), E("gpt2.kv.logits_last_full"), kTol);

  clipcap::KVCache cache;
  std::vector<int64_t> step_argmax;
  std::vector<torch::Tensor> step_lse;
  torch::Tensor last;
  for (int64_t t = 0; t < T; ++t) {
    EXPECT_EQ(cache.length(), t);
    last = gpt2->logits(gpt2->forward(gpt2->embed(ids.slice(1, t, t + 1)), {}, &cache).select(1, -1));  // (1, V)
    EXPECT_TENSOR_NEAR(last, full.select(1, t), kKvTol) << "step " << t;
    step_argmax.push_back(last.argmax(-1).item<int64_t>());
    step_lse.push_back(last.logsumexp(-1));
  }
  EXPECT_EQ(cache.length(), T);
  EXPECT_TENSOR_NEAR(last, E("gpt2.kv.logits_last_incremental"), kTol);
  EXPECT_TENSOR_EQ(torch::tensor(step_argmax), E("gpt2.kv.step_argmax"));
  EXPECT_TENSOR_NEAR(torch::cat(step_lse), E("gpt2.kv.step_logsumexp"), kTol);
  for (int64_t l = 0; l < gpt2->config.n_layer; ++l) {
    const std::string p = "gpt2.kv.present." + std::to_string(l) + ".";
    EXPECT_TENSOR_NEAR(cache.keys[l], E(p + "key"), kTol) << p;
    EXPECT_TENSOR_NEAR(cache.values[l], E(p + "value"), kTol) << p;
  }
  cache.clear();
  EXPECT_EQ(cache.length(), 0);
}

TEST(GPT2KVCache, ChunksAfterACachedPrefix) {
  // T > 1 with a non-empty cache: each new query row i may see keys up to P + i.
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  const torch::Tensor& ids = E("gpt2.kv.input_ids");
  const int64_t T = ids.size(1), cut = T / 2;
  torch::Tensor full = gpt2->forward(gpt2->embed(ids));  // (1, T, D)
  clipcap::KVCache cache;
  torch::Tensor a = gpt2->forward(gpt2->embed(ids.slice(1, 0, cut)), {}, &cache);
  torch::Tensor b = gpt2->forward(gpt2->embed(ids.slice(1, cut, T)), {}, &cache);
  EXPECT_TENSOR_NEAR(torch::cat({a, b}, 1), full, kKvTol);
}

TEST(GPT2KVCache, ReorderFollowsBeams) {
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  const torch::Tensor& batch = E("gpt2.batch.input_ids");  // two sequences, no padding in the first L
  const torch::Tensor& mask = E("gpt2.batch.attention_mask");
  const int64_t L = mask.sum(1).min().item<int64_t>() - 1;
  ASSERT_GE(L, 1);
  clipcap::KVCache cache;
  gpt2->forward(gpt2->embed(batch.slice(1, 0, L)), {}, &cache);
  torch::Tensor beams = torch::tensor(std::vector<int64_t>{1, 1, 0});
  cache.reorder(beams);
  EXPECT_EQ(cache.keys[0].size(0), 3);
  torch::Tensor next = batch.index_select(0, beams).slice(1, L, L + 1);  // (3, 1)
  torch::Tensor step = gpt2->logits(gpt2->forward(gpt2->embed(next), {}, &cache).select(1, -1));  // (3, V)
  torch::Tensor want = gpt2->logits(gpt2->forward(gpt2->embed(batch.index_select(0, beams).slice(1, 0, L + 1))).select(1, -1));
  EXPECT_TENSOR_NEAR(step, want, kKvTol);
}

TEST(GPT2KVCache, GrowsAndReordersThroughALongDecode) {
  // One token at a time to n_positions: the cache outgrows its first buffers more than once and
  // is reordered (beam search) half way; the last step must still equal a full forward.
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  const int64_t T = gpt2->config.n_positions, half = T / 2;
  torch::manual_seed(3);
  torch::Tensor ids = torch::randint(gpt2->config.vocab_size, {2, T});  // (2, T)
  const torch::Tensor beams = torch::tensor(std::vector<int64_t>{1, 0, 1});
  clipcap::KVCache cache;
  torch::Tensor step;
  for (int64_t t = 0; t < T; ++t) {
    if (t == half) cache.reorder(beams);
    const torch::Tensor rows = t < half ? ids : ids.index_select(0, beams);
    const void* before = t > 0 ? cache.keys[0].data_ptr() : nullptr;
    step = gpt2->logits(gpt2->forward(gpt2->embed(rows.slice(1, t, t + 1)), {}, &cache).select(1, -1));  // (B, V)
    // A step that fits in the buffer writes its token there instead of copying the cache.
    if (t == 5 || t == half + 3) {
      EXPECT_EQ(cache.keys[0].data_ptr(), before) << "step " << t;
    }
  }
  EXPECT_EQ(cache.length(), T);
  torch::Tensor want = gpt2->logits(gpt2->forward(gpt2->embed(ids.index_select(0, beams))).select(1, -1));  // (3, V)
  EXPECT_TENSOR_NEAR(step, want, kKvTol);
}

TEST(GPT2KVCache, PaddingMaskDuringIncrementalDecoding) {
  // A right-padded row continues with its mask extended by ones: equals the full masked forward.
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  const torch::Tensor& ids = E("gpt2.batch.input_ids");
  const torch::Tensor& mask = E("gpt2.batch.attention_mask");
  const int64_t T = ids.size(1);
  torch::Tensor full = gpt2->forward(gpt2->embed(ids), mask);  // (B, T, D)
  clipcap::KVCache cache;
  torch::Tensor first = gpt2->forward(gpt2->embed(ids.slice(1, 0, T - 1)), mask.slice(1, 0, T - 1), &cache);
  torch::Tensor last = gpt2->forward(gpt2->embed(ids.slice(1, T - 1, T)), mask, &cache);
  EXPECT_TENSOR_NEAR(torch::cat({first, last}, 1), full, kKvTol);
}

TEST(GPT2Golden, GreedyTokensWithTheCache) {
  torch::NoGradGuard no_grad;
  const torch::Tensor& want = E("gpt2.greedy.tokens");
  EXPECT_TENSOR_EQ(greedy(tiny_gpt2(), E("gpt2.greedy.prefix_embeds"), want.size(1)), want);
}

// Frozen for inference (the executables' load), products read packed weight copies from their
// second use on: the golden tokens and activations still hold, with every weight packed.
TEST(GPT2Golden, FrozenWeightsGiveTheGoldenTokensAndActivations) {
  torch::NoGradGuard no_grad;
  clipcap::GPT2 gpt2 = clipcap::load_gpt2(fixture("tiny-gpt2"));  // not the shared one
  clipcap::freeze_weights_for_inference(*gpt2);
  const torch::Tensor& want = E("gpt2.greedy.tokens");
  for (int run = 0; run < 2; ++run)
    EXPECT_TENSOR_EQ(greedy(gpt2, E("gpt2.greedy.prefix_embeds"), want.size(1)), want) << "run " << run;
  const torch::Tensor& ids = E("gpt2.batch.input_ids");
  EXPECT_TENSOR_NEAR(gpt2->forward(gpt2->embed(ids), E("gpt2.batch.attention_mask")), E("gpt2.batch.last_hidden_state"), kTol);
}

TEST(GPT2Load, StoredLmHeadThatDiffersIsUsed) {
  torch::NoGradGuard no_grad;
  std::string dir = clipcap::test::temp_dir("gpt2-untied");
  fs::copy_file(fixture("tiny-gpt2/config.json"), dir + "/config.json");
  clipcap::NamedTensors tensors;
  torch::Tensor wte;
  for (const auto& [name, t] : clipcap::load_safetensors(fixture("tiny-gpt2/model.safetensors"))) {
    tensors.emplace_back(name, t);
    if (name == "wte.weight") wte = t;
  }
  tensors.emplace_back("lm_head.weight", wte * 2);
  clipcap::save_safetensors(dir + "/model.safetensors", tensors);

  auto gpt2 = clipcap::load_gpt2(dir);
  ASSERT_TRUE(gpt2->lm_head.defined());
  EXPECT_TRUE(gpt2->named_parameters().contains("lm_head"));
  torch::Tensor h = gpt2->forward(gpt2->embed(E("gpt2.seq0.input_ids")));
  EXPECT_TENSOR_NEAR(subset(gpt2->logits(h)), 2 * E("gpt2.seq0.logits_subset"), 2 * kTol);
}

TEST(GPT2Training, GradientsReachEveryParameter) {
  auto gpt2 = clipcap::load_gpt2(fixture("tiny-gpt2"));
  gpt2->train();
  const torch::Tensor& ids = E("gpt2.seq0.input_ids");
  torch::Tensor embeds = gpt2->embed(ids);
  torch::Tensor logits = gpt2->logits(gpt2->forward(embeds));  // (1, T, V)
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits.slice(1, 0, -1).reshape({-1, logits.size(-1)}),
                                                            ids.slice(1, 1).reshape({-1}));
  loss.backward();
  auto params = gpt2->named_parameters();
  // wte, wpe, ln_f and 12 tensors per block, all visible to an optimizer.
  EXPECT_EQ(static_cast<int64_t>(params.size()), 4 + 12 * gpt2->config.n_layer);
  for (const auto& p : params) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

TEST(GPT2BadInput, ShapeThatDisagreesWithConfig) {
  std::string dir = gpt2_dir_with("model.safetensors", "gpt2-bad-shape");
  auto cfg = clipcap::read_json(dir + "/config.json");
  const int64_t n_embd = cfg["n_embd"].get<int64_t>() + cfg["n_head"].get<int64_t>();  // still divisible
  cfg["n_embd"] = n_embd;
  clipcap::write_json_atomic(dir + "/config.json", cfg);
  expect_error([&] { clipcap::load_gpt2(dir); },
               {dir + "/model.safetensors", "wte.weight", "has shape", dir + "/config.json", std::to_string(n_embd) + "]"});
}

TEST(GPT2BadInput, MissingTensor) {
  std::string dir = clipcap::test::temp_dir("gpt2-missing-tensor");
  fs::copy_file(fixture("tiny-gpt2/config.json"), dir + "/config.json");
  const std::string dropped = "h.0.mlp.c_proj.bias";
  clipcap::NamedTensors keep;
  for (const auto& [name, t] : clipcap::load_safetensors(fixture("tiny-gpt2/model.safetensors")))
    if (name != dropped) keep.emplace_back(name, t);
  clipcap::save_safetensors(dir + "/model.safetensors", keep);
  expect_error([&] { clipcap::load_gpt2(dir); }, {dir + "/model.safetensors", "missing tensor", dropped});
}

TEST(GPT2BadInput, MissingConfigField) {
  std::string dir = gpt2_dir_with("model.safetensors", "gpt2-missing-field");
  auto cfg = clipcap::read_json(dir + "/config.json");
  cfg.erase("n_layer");
  clipcap::write_json_atomic(dir + "/config.json", cfg);
  expect_error([&] { clipcap::load_gpt2(dir); }, {dir + "/config.json", "n_layer", "missing"});
}

TEST(GPT2BadInput, ConfigThatIsNotJson) {
  std::string dir = gpt2_dir_with("model.safetensors", "gpt2-not-json");
  std::ofstream(dir + "/config.json") << "n_embd = 16\n";
  expect_error([&] { clipcap::load_gpt2(dir); }, {dir + "/config.json", "JSON"});
}

TEST(GPT2BadInput, DirectoryWithoutWeights) {
  std::string dir = clipcap::test::temp_dir("gpt2-no-weights");
  fs::copy_file(fixture("tiny-gpt2/config.json"), dir + "/config.json");
  expect_error([&] { clipcap::load_gpt2(dir); }, {dir, "model.safetensors"});
  expect_error([&] { clipcap::load_gpt2(dir + "/nonexistent"); }, {dir + "/nonexistent"});
}

TEST(GPT2BadInput, TooManyPositionsAndBadIds) {
  torch::NoGradGuard no_grad;
  auto& gpt2 = tiny_gpt2();
  const int64_t n = gpt2->config.n_positions;
  expect_error([&] { gpt2->forward(torch::zeros({1, n + 1, gpt2->config.n_embd})); }, {"n_positions"});
  clipcap::KVCache cache;
  gpt2->forward(torch::zeros({1, n, gpt2->config.n_embd}), {}, &cache);
  expect_error([&] { gpt2->forward(torch::zeros({1, 1, gpt2->config.n_embd}), {}, &cache); }, {"n_positions"});
  expect_error([&] { gpt2->embed(torch::full({1, 2}, gpt2->config.vocab_size, torch::kLong)); }, {"vocabulary"});
  expect_error([&] { gpt2->forward(torch::zeros({1, 2, gpt2->config.n_embd + 1})); }, {"inputs_embeds"});
  expect_error([&] { gpt2->forward(torch::zeros({1, 2, gpt2->config.n_embd}), torch::ones({1, 3}, torch::kLong)); },
               {"attention_mask"});
}

TEST(GPT2Bf16, GreedyMostlyAgreesWithFloat32) {
  torch::NoGradGuard no_grad;
  clipcap::GPT2LoadOptions opts;
  opts.dtype = torch::kBFloat16;
  auto gpt2 = clipcap::load_gpt2(fixture("tiny-gpt2"), opts);
  EXPECT_EQ(gpt2->wte->weight.scalar_type(), torch::kBFloat16);
  const torch::Tensor& want = E("gpt2.greedy.tokens");
  torch::Tensor got = greedy(gpt2, E("gpt2.greedy.prefix_embeds"), want.size(1));
  // bf16 keeps ~3 significant digits; the fixture's greedy margins are >= 0.26 (manifest
  // greedy_min_margin) but bf16 errors compound along the continuation: require the first token
  // and at least half of them.
  EXPECT_EQ(got[0][0].item<int64_t>(), want[0][0].item<int64_t>());
  EXPECT_GE((got == want).sum().item<int64_t>() * 2, want.numel());
  // Logits stay close to the float32 reference.
  torch::Tensor h = gpt2->forward(gpt2->embed(E("gpt2.seq0.input_ids")));
  EXPECT_TENSOR_NEAR(gpt2->logits(h).to(torch::kFloat).logsumexp(-1), E("gpt2.seq0.logsumexp"), 0.5);
}
