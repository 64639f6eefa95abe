// Training speed of the clipcap core: steps/s, target tokens/s and peak memory of clipcap-train's
// step for the small configuration's shapes (configs/small.json = upstream ConfigS: ViT-B/32
// pooler_output 768 -> mapping of 6 layers, 16 heads, expansion 4, ep_len 4, dropout 0.1 -> GPT-2
// small), batch 64, upstream freeze policy, random seeded weights.
//
//   build/bench/train_bench --batches /tmp/batches.json --config configs/small.json
//       --tokenizer tests/fixtures/tiny-gpt2 --dtype f32 --threads 2 --warmup 2 --steps 5   (one line)
//
// One step is train_captioner's inner loop (train/trainer.cpp), made of the same library calls:
// clipcap::collate (dynamic padding) -> clipcap::caption_loss (under bf16 autocast with
// --dtype bf16, as `autocast: bf16` does) -> backward -> clip_grad_norm_(grad_clip) -> the
// config's optimizer (FusedAdam) step -> clear_gradients (zero_grad with set_to_none), with the
// trainable weights of apply_freeze_policy(captioner, config.freeze).
// --step plain runs the step the Python baseline runs, on the same modules: the objective written
// out over the whole padded batch (GPT-2 on every position, logits on every position from the last
// prefix slot on), libtorch's torch::optim::Adam, zero_grad(). It shows what C++ alone gives and
// what clipcap's training path adds.
// The caption token ids come from --batches (py_train_baseline.py make-batches), the image
// embeddings are randn from (seed, batch index): the Python baseline trains on the same numbers.
// The CLIP vision tower is not used in training (embeddings are precomputed), so the captioner
// gets a one-layer one of the right width. --check first verifies in eval mode that
// caption_loss equals the objective written out as the Python baseline computes it.
// One JSON object on stdout, progress on stderr; bench/run_train_bench.sh runs both sides.
//
// Data-parallel: started as ranks (torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; see
// bench/run_ddp_bench.sh), each rank trains its block of every global batch and the step is
// clipcap-train's distributed one: weighted loss, backward, gradients summed over the ranks in
// flat buckets (train/distributed.h), clip, optimizer. Rank 0 prints the JSON, with samples/s of
// the global batch, the bytes each step all-reduces and the all-reduce's share of the step.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "bench/vit_b32.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/runtime.h"
#include "model/captioner.h"
#include "train/bf16_autocast.h"
#include "train/caption_batches.h"
#include "train/caption_objective.h"
#include "train/distributed.h"
#include "train/freeze_policy.h"
#include "train/optimizer.h"
#include "train/train_config.h"

namespace {

using clipcap::Error;

struct BenchOptions {
  std::string batches;                    // py_train_baseline.py make-batches output
  std::string config = "configs/small.json";
  std::string tokenizer = "tests/fixtures/tiny-gpt2";  // GPT-2's vocabulary; only its kind and EOS matter
  std::string dtype = "f32";              // f32 | bf16 (autocast, as `autocast: bf16`)
  int threads = 2;
  int warmup = 2;
  int steps = 5;
  uint64_t seed = 0;
  std::string step = "clipcap";          // clipcap | plain (see above)
  bool check = false;
};

// The captioner of the configuration's shapes: GPT-2 small (HF init), a fresh mapping from the
// config, and a 1-layer CLIP vision tower of width 768 that training never runs.
clipcap::Captioner make_captioner(const clipcap::TrainConfig& cfg, const std::string& tokenizer_dir, uint64_t seed) {
  torch::manual_seed(seed);
  clipcap::CaptionerConfig cc;
  cc.clip.vision = clipcap::bench::vit_b32_vision(1);  // its pooler_output width is the mapping's input
  const clipcap::CLIPVisionConfig& vc = cc.clip.vision;
  cc.gpt2 = clipcap::GPT2Config{};  // the defaults are GPT-2 small, pdrop 0.1
  cc.mapping = clipcap::mapping_config(cfg);
  cc.mapping.input_size = vc.hidden_size;
  cc.mapping.output_size = cc.gpt2.n_embd;
  auto tokenizer = clipcap::load_tokenizer(tokenizer_dir);
  if (tokenizer->eos_id() != cc.gpt2.eos_token_id)
    throw Error(tokenizer_dir + ": not GPT-2's vocabulary (EOS " + std::to_string(tokenizer->eos_id()) + ")");
  return clipcap::Captioner(cc, clipcap::CLIPVisionTransformer(vc), torch::nn::Linear{nullptr},
                            clipcap::Mapping(cc.mapping), clipcap::GPT2(cc.gpt2), std::move(tokenizer),
                            clipcap::ImageProcessor(clipcap::ImageProcessorConfig{}), tokenizer_dir);
}

// The batches file: {"batch": B, "eos": id, "batches": [[[ids..., EOS], ...B lists], ...]}.
std::vector<std::vector<clipcap::CaptionExample>> read_batches(const std::string& path, int64_t vocab, int64_t eos) {
  const nlohmann::json doc = clipcap::read_json(path);
  if (!doc.contains("batches") || !doc["batches"].is_array())
    throw Error(path + ": no 'batches' array (write it with py_train_baseline.py make-batches)");
  std::vector<std::vector<clipcap::CaptionExample>> out;
  for (const auto& b : doc["batches"]) {
    std::vector<clipcap::CaptionExample> examples;
    for (const auto& ids : b) {
      clipcap::CaptionExample ex;
      ex.row = static_cast<int64_t>(examples.size());
      ex.tokens = ids.get<std::vector<int64_t>>();
      if (ex.tokens.empty() || ex.tokens.back() != eos)
        throw Error(path + ": batch " + std::to_string(out.size()) + " has a caption that does not end with EOS");
      for (int64_t t : ex.tokens)
        if (t < 0 || t >= vocab) throw Error(path + ": token id " + std::to_string(t) + " outside the vocabulary");
      examples.push_back(std::move(ex));
    }
    if (examples.empty()) throw Error(path + ": batch " + std::to_string(out.size()) + " is empty");
    out.push_back(std::move(examples));
  }
  return out;
}

std::vector<int64_t> identity_order(size_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  return order;
}

// (B, Dc) image embeddings for batch i: randn from seed + 1 + i, as py_train_baseline.py draws them.
torch::Tensor batch_embeddings(int64_t rows, int64_t dim, uint64_t seed, size_t i) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1 + i);
  return at::randn({rows, dim}, gen);
}

// The objective as py_train_baseline.py writes it: GPT-2 over the whole padded batch, logits of
// every position from the last prefix slot on, float32 cross-entropy ignoring padding. --check
// compares caption_loss with it; --step plain trains with it.
torch::Tensor plain_loss(clipcap::Captioner& cap, const clipcap::CaptionBatch& b) {
  clipcap::GPT2& g = cap.gpt2();
  torch::Tensor prefix = cap.prefix(b.embeds);  // (B, E, D)
  const int64_t E = prefix.size(1), T = b.tokens.size(1);
  torch::Tensor inputs =
      torch::cat({prefix, g->embed(b.tokens.slice(1, 0, T - 1)).to(prefix.scalar_type())}, 1);  // (B, E+T-1, D)
  torch::Tensor logits = g->logits(g->forward(inputs).slice(1, E - 1));                  // (B, T, V)
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(2)}).to(torch::kFloat32), b.targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int run(int argc, char** argv) {
  BenchOptions o;
  CLI::App app{"clipcap training-step benchmark (see bench/README.md)"};
  app.add_option("--batches", o.batches, "caption batches (py_train_baseline.py make-batches)")->required();
  app.add_option("--config", o.config, "training config: mapping shape, optimizer, grad_clip, freeze")
      ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "GPT-2 tokenizer directory")->capture_default_str();
  app.add_option("--dtype", o.dtype, "f32, or bf16 (autocast forward, f32 weights and optimizer)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "libtorch intra-op threads")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed steps first")->capture_default_str();
  app.add_option("--steps", o.steps, "timed steps (median reported)")->capture_default_str();
  app.add_option("--seed", o.seed, "weights and image embeddings")->capture_default_str();
  app.add_option("--step", o.step, "clipcap (the library's training step) or plain (the Python baseline's algorithm)")
      ->check(CLI::IsMember({"clipcap", "plain"}))
      ->capture_default_str();
  app.add_flag("--check", o.check, "first check caption_loss against the objective written out (eval mode, f32)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.steps < 1 || o.warmup < 0) throw Error("--steps must be >= 1, --warmup >= 0");

  nlohmann::json cj = clipcap::train_config_defaults();
  clipcap::merge_config(cj, clipcap::read_json(o.config), o.config);
  const clipcap::TrainConfig cfg = clipcap::TrainConfig::from_json(cj, o.config);

  clipcap::RuntimeOptions rt;
  rt.threads = o.threads;
  clipcap::apply_runtime(rt);
  std::unique_ptr<clipcap::DataParallel> ranks;
  if (auto info = clipcap::ranks_from_environment()) ranks = clipcap::connect_ranks(*info, {});
  clipcap::DataParallel& parallel = ranks ? *ranks : clipcap::single_process();
  const bool distributed = parallel.world_size() > 1;
  if (distributed && o.step == "plain") throw Error("--step plain runs in one process only");
  if (distributed && o.check) throw Error("--check runs in one process only");
  clipcap::Captioner cap = make_captioner(cfg, o.tokenizer, o.seed);
  const auto batches = read_batches(o.batches, cap.config().gpt2.vocab_size, cap.tokenizer().eos_id());
  const size_t n = static_cast<size_t>(o.warmup + o.steps);
  if (batches.size() < n)
    throw Error(o.batches + ": " + std::to_string(batches.size()) + " batches, need --warmup + --steps = " +
                std::to_string(n));
  const int64_t dim = cap.config().mapping.input_size;

  if (o.check) {
    torch::NoGradGuard no_grad;
    const auto& ex = batches[0];
    clipcap::CaptionBatch b =
        clipcap::collate(ex, identity_order(ex.size()), 0, ex.size(), batch_embeddings(ex.size(), dim, o.seed, 0));
    const double lib = clipcap::caption_loss(cap, b).item<double>(), ref = plain_loss(cap, b).item<double>();
    if (!(std::abs(lib - ref) <= 1e-5 * std::abs(ref)))
      throw Error("--check: caption_loss " + std::to_string(lib) + " != the objective written out " + std::to_string(ref));
    std::fprintf(stderr, "cpp: check ok: caption_loss %.6f == objective written out %.6f (eval mode)\n", lib, ref);
  }

  // As train_captioner sets up a run (policy upstream: mapping and GPT-2 in training mode).
  auto params = clipcap::apply_freeze_policy(cap, cfg.freeze);
  const bool plain = o.step == "plain";
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (plain) {
    if (cfg.optimizer != "adam") throw Error("--step plain: only for the optimizer adam (the config says " + cfg.optimizer + ")");
    torch::optim::AdamOptions ao(cfg.lr);
    ao.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_eps).weight_decay(cfg.weight_decay);
    optimizer = std::make_unique<torch::optim::Adam>(params, ao);
  } else {
    optimizer = clipcap::make_optimizer(cfg, params);
  }
  clipcap::set_lr(*optimizer, cfg.lr);  // the schedule's peak; the value does not change the cost
  cap.mapping()->train();
  cap.gpt2()->train(cfg.freeze != "mapping-only");
  const bool autocast = o.dtype == "bf16";
  const double model_rss = peak_rss_mb();
  int64_t trainable = 0, total = 0;
  for (const auto& p : params) trainable += p.numel();
  for (const auto& p : cap.gpt2()->parameters()) total += p.numel();
  for (const auto& p : cap.mapping()->parameters()) total += p.numel();
  std::fprintf(stderr, "cpp: libtorch %s, threads %d, %lld trainable of %lld mapping + GPT-2 parameters\n",
               TORCH_VERSION, at::get_num_threads(), static_cast<long long>(trainable), static_cast<long long>(total));

  parallel.broadcast(params);
  const int64_t global_batch = static_cast<int64_t>(batches[0].size());
  const int64_t per_rank = parallel.per_rank(global_batch, "the batches file's batch");
  std::vector<double> times, fwd, bwd, reduce, opt, losses;
  std::vector<int64_t> tokens;
  for (size_t i = 0; i < n; ++i) {
    const auto& ex = batches[i];
    torch::Tensor embeddings = batch_embeddings(ex.size(), dim, o.seed, i);
    const auto order = identity_order(ex.size());
    const auto [first, last] = parallel.share(0, static_cast<int64_t>(ex.size()), per_rank);
    auto t0 = Clock::now();
    clipcap::CaptionBatch batch = clipcap::collate(ex, order, first, last, embeddings);
    torch::Tensor loss;
    {
      clipcap::Bf16Autocast ac(autocast);
      loss = plain ? plain_loss(cap, batch) : clipcap::caption_loss(cap, batch);
    }
    auto t1 = Clock::now();
    // clipcap-train's step: the loss weighted by its target tokens, the gradients summed over the
    // ranks (one process: nothing to send) and divided by all ranks' tokens.
    std::vector<double> totals{static_cast<double>(batch.n_tokens), 0.0};
    if (plain) {
      loss.backward();
    } else {
      (loss * static_cast<double>(batch.n_tokens)).backward();
      totals[1] = loss.item<double>() * static_cast<double>(batch.n_tokens);
    }
    auto t2 = Clock::now();
    if (!plain) parallel.reduce_gradients(params, totals);
    losses.push_back(plain ? loss.item<double>() : totals[1] / totals[0]);
    auto t2r = Clock::now();
    if (cfg.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    optimizer->step();
    if (plain)
      optimizer->zero_grad();
    else
      clipcap::clear_gradients(*optimizer);
    auto t3 = Clock::now();
    const bool timed = i >= static_cast<size_t>(o.warmup);
    if (timed) {
      times.push_back(seconds(t0, t3));
      fwd.push_back(seconds(t0, t1));
      bwd.push_back(seconds(t1, t2));
      reduce.push_back(seconds(t2, t2r));
      opt.push_back(seconds(t2r, t3));
      tokens.push_back(static_cast<int64_t>(totals[0]));
    }
    if (parallel.writes_outputs())
      std::fprintf(stderr, "cpp: step %zu/%zu%s: loss %.4f, %.0f ms\n", i + 1, n, timed ? "" : " (warm-up)",
                   losses.back(), seconds(t0, t3) * 1e3);
  }
  if (!parallel.writes_outputs()) return 0;  // rank 0 reports

  const double med = median(times);
  const double total_s = std::accumulate(times.begin(), times.end(), 0.0);
  const int64_t total_tokens = std::accumulate(tokens.begin(), tokens.end(), int64_t{0});
  int64_t reduced_bytes = 0;  // the gradients of the trainable weights, f32, and the step's totals
  for (const auto& p : params) reduced_bytes += p.numel() * 4;
  reduced_bytes += 16;
  nlohmann::json rec = {{"impl", plain ? "cpp-plain" : distributed ? "cpp-ddp" : "cpp"},
                        {"ranks", parallel.world_size()},
                        {"samples_per_s", static_cast<double>(global_batch) / med},
                        {"allreduce_bytes_per_step", distributed ? reduced_bytes : 0},
                        {"dtype", o.dtype},
                        {"batch", static_cast<int64_t>(batches[0].size())},
                        {"threads", at::get_num_threads()},
                        {"warmup", o.warmup},
                        {"steps", o.steps},
                        {"median_s", med},
                        {"steps_per_s", 1.0 / med},
                        {"tokens_per_s", static_cast<double>(total_tokens) / total_s},
                        {"tokens_per_step", static_cast<double>(total_tokens) / static_cast<double>(tokens.size())},
                        {"initial_loss", losses.front()},
                        {"losses", losses},
                        {"times_s", times},
                        {"phases_median_s",
                         {{"forward", median(fwd)}, {"backward", median(bwd)}, {"allreduce", median(reduce)},
                          {"optimizer", median(opt)}}},
                        {"peak_rss_mb", peak_rss_mb()},
                        {"model_rss_mb", model_rss},
                        {"trainable_params", trainable}};
  std::fprintf(stderr, "cpp (%s step): %s: median %.0f ms/step, %.3f steps/s, %.0f tokens/s, peak RSS %.0f MB\n",
               o.step.c_str(), o.dtype.c_str(), med * 1e3, 1.0 / med, rec["tokens_per_s"].get<double>(), rec["peak_rss_mb"].get<double>());
  std::cout << rec.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main("train_bench", [&] { return run(argc, argv); });
}
