// The pieces of one training step that are built for speed must compute what the plain version
// computes: the objective over length runs (no work on padding) against the padded batch written
// out, and FusedAdam against libtorch's Adam, checkpoints included.
#include <torch/torch.h>

#include <sstream>

#include "model/captioner.h"
#include "test_support.h"
#include "train/caption_batches.h"
#include "train/caption_objective.h"
#include "train/freeze_policy.h"
#include "train/optimizer.h"

using namespace clipcap::test;

namespace {

clipcap::Captioner tiny_captioner() {
  torch::manual_seed(3);
  return clipcap::Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), [] {
    clipcap::MappingConfig m;
    m.num_layers = 1;
    m.n_heads = 4;
    return m;
  }());
}

// Captions of very different lengths (so the objective splits the batch into several runs) in an
// unsorted order, with random token ids, each ending in EOS.
clipcap::CaptionBatch mixed_length_batch(const clipcap::Captioner& cap) {
  const std::vector<int> lengths = {20, 2, 41, 3, 22, 40, 1, 21};  // tokens before EOS
  torch::manual_seed(11);
  std::vector<clipcap::CaptionExample> ex;
  for (int len : lengths) {
    clipcap::CaptionExample e;
    e.row = static_cast<int64_t>(ex.size());
    for (int t = 0; t < len; ++t) e.tokens.push_back(torch::randint(0, 50256, {1}).item<int64_t>());
    e.tokens.push_back(cap.tokenizer().eos_id());
    ex.push_back(e);
  }
  std::vector<int64_t> order(ex.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  return clipcap::collate(ex, order, 0, ex.size(), torch::randn({static_cast<int64_t>(ex.size()), cap.config().mapping.input_size}));
}

// The objective written out the plain way: GPT-2 over the whole padded batch, logits at every
// position from the last prefix slot on, cross-entropy ignoring padding.
torch::Tensor padded_logits(clipcap::Captioner& cap, const clipcap::CaptionBatch& b) {
  auto& g = cap.gpt2();
  torch::Tensor prefix = cap.prefix(b.embeds);  // (B, E, D)
  const int64_t E = prefix.size(1), T = b.tokens.size(1);
  torch::Tensor x = torch::cat({prefix, g->embed(b.tokens.slice(1, 0, T - 1))}, 1);  // (B, E+T-1, D)
  return g->logits(g->forward(x).slice(1, E - 1));                                  // (B, T, V)
}

std::vector<torch::Tensor> gradients(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.grad().clone());
  return out;
}

}  // namespace

TEST(CaptionObjective, LossAndGradientsEqualThePaddedBatchWrittenOut) {
  auto cap = tiny_captioner();
  auto params = clipcap::apply_freeze_policy(cap, "full");  // eval mode (no dropout) from create()
  clipcap::CaptionBatch b = mixed_length_batch(cap);
  ASSERT_EQ(b.tokens.size(1), 42);

  torch::Tensor logits = padded_logits(cap, b);  // (B, T, V)
  const int64_t V = logits.size(2);
  torch::Tensor want = torch::nn::functional::cross_entropy(
      logits.reshape({-1, V}), b.targets.reshape({-1}), torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  want.backward();
  auto want_grads = gradients(params);
  for (auto& p : params) p.mutable_grad().zero_();

  torch::Tensor got = clipcap::caption_loss(cap, b);
  got.backward();
  auto got_grads = gradients(params);
  EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-5);
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(tensors_near(got_grads[i], want_grads[i], 1e-6)) << "parameter " << i;

  // Per token: the same losses where there are targets, exact zeros on the padding.
  torch::NoGradGuard no_grad;
  torch::Tensor per_token = clipcap::caption_token_losses(cap, b);  // (B, T)
  torch::Tensor want_tokens = torch::nn::functional::cross_entropy(
      padded_logits(cap, b).reshape({-1, V}), b.targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone));
  EXPECT_TRUE(tensors_near(per_token, want_tokens.view_as(per_token), 1e-5));
  EXPECT_EQ(per_token.masked_select(b.targets.eq(-100)).abs().sum().item<double>(), 0.0);
}

TEST(FusedAdam, StepsLikeTorchAdamAndSharesItsCheckpoints) {
  for (double wd : {0.0, 0.01}) {
    torch::manual_seed(5);
    std::vector<torch::Tensor> a = {torch::randn({300, 70}), torch::randn({7}), torch::randn({1})};
    std::vector<torch::Tensor> f;
    for (auto& t : a) {
      t.set_requires_grad(true);
      f.push_back(t.detach().clone().set_requires_grad(true));
    }
    torch::optim::AdamOptions o(3e-3);
    o.weight_decay(wd);
    torch::optim::Adam adam(a, o);
    clipcap::FusedAdam fused(f, o);
    auto step_both = [&](torch::optim::Optimizer& x, std::vector<torch::Tensor>& px, torch::optim::Optimizer& y,
                         std::vector<torch::Tensor>& py) {
      for (size_t i = 0; i < px.size(); ++i) {
        torch::Tensor g = torch::randn_like(px[i]);
        px[i].mutable_grad() = g.clone();
        py[i].mutable_grad() = g.clone();
      }
      x.step();
      y.step();
    };
    for (int s = 0; s < 5; ++s) step_both(adam, a, fused, f);
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(tensors_near(f[i], a[i], 1e-6)) << "weight decay " << wd << ", parameter " << i;

    // A checkpoint of FusedAdam is an Adam checkpoint: both continue from it alike.
    std::stringstream buf;
    {
      torch::serialize::OutputArchive out;
      fused.save(out);
      out.save_to(buf);
    }
    std::vector<torch::Tensor> r;
    for (auto& t : f) r.push_back(t.detach().clone().set_requires_grad(true));
    torch::optim::Adam restored(r, o);
    torch::serialize::InputArchive in;
    in.load_from(buf);
    restored.load(in);
    step_both(fused, f, restored, r);
    for (size_t i = 0; i < f.size(); ++i) EXPECT_TRUE(tensors_near(r[i], f[i], 1e-6)) << "after restore, parameter " << i;
  }
}

TEST(FusedAdam, ClearedGradientsAreWrittenByTheNextBackward) {
  torch::Tensor w = torch::ones({3}).set_requires_grad(true);
  clipcap::FusedAdam opt({w}, torch::optim::AdamOptions(0.1));
  (w * 2).sum().backward();
  opt.step();
  clipcap::clear_gradients(opt);
  EXPECT_FALSE(w.grad().defined());
  (w * 3).sum().backward();
  EXPECT_TRUE(tensors_near(w.grad(), torch::full({3}, 3.0), 0));  // not 2 + 3
}
