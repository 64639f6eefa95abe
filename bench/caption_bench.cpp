// Captioning speed of the clipcap core: latency per batch and images/s for CLIP ViT-B/32 ->
// upstream ConfigS mapping -> GPT-2 small with random weights, a fixed number of tokens per image.
//
//   build/bench/caption_bench --threads 2 --reps 5
//       --runs cached:f32:1,cached:f32:16,cached:bf16:1,cached:bf16:16,upstream:f32:16  (one line)
//
// Algorithms (the same names as bench/py_caption_baseline.py, which runs the Python side):
//   cached    clipcap's path: the batch through CLIP and the mapping at once, then
//             clipcap::generate() (greedy, KV cache) with min_len = max_len = --tokens.
//   upstream  upstream's Net.forward reproduced on the same modules: one image at a time, GPT-2
//             recomputed over [BOS, prefix, tokens so far] every step with no cache, the LM head on
//             every row, wpe added by hand (including the step-0 aliasing), EOS banned.
//   legacy    the core's clipcap::legacy_generate() (the same algorithm as upstream, as shipped for
//             imported checkpoints), one image at a time; it cannot ban EOS.
// Input is random 224x224 pixel tensors: image decoding and preprocessing are not measured.
// One JSON object per run on stdout (one line each), progress on stderr; bench/run_caption_bench.sh
// runs both sides and writes the table.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/random_captioner.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/runtime.h"
#include "bench/hardware_probes.h"
#include "model/captioner.h"
#include "model/decoding.h"
#include "model/legacy_captioner.h"

namespace {

using clipcap::Error;
using TokenLists = std::vector<std::vector<int64_t>>;
using clipcap::bench::kEos;

struct BenchOptions {
  std::string runs = "cached:f32:1,cached:f32:16,cached:bf16:1,cached:bf16:16,upstream:f32:16";
  int tokens = 20;    // generated tokens per image (EOS banned until then)
  int threads = 2;    // libtorch intra-op threads
  int warmup = 1;     // untimed runs before the timed ones (upstream: on one image)
  int reps = 5;       // timed runs per configuration; the median is reported
  uint64_t seed = 0;  // weights and pixels
  bool check = false; // first verify cached decoding against a full recompute
  bool probes = false; // first measure memory bandwidth and GEMM peaks (hardware_probes.h)
};

struct Run {
  std::string algo, dtype;
  int64_t batch = 1;
};

std::vector<Run> parse_runs(const std::string& spec) {
  std::vector<Run> runs;
  std::stringstream all(spec);
  std::string item;
  while (std::getline(all, item, ',')) {
    Run r;
    std::stringstream parts(item);
    std::string batch;
    if (!std::getline(parts, r.algo, ':') || !std::getline(parts, r.dtype, ':') || !std::getline(parts, batch))
      throw Error("--runs: '" + item + "': expected algo:dtype:batch");
    if (r.algo != "cached" && r.algo != "upstream" && r.algo != "legacy")
      throw Error("--runs: '" + item + "': algo must be cached, upstream or legacy");
    if (r.dtype != "f32" && r.dtype != "bf16" && r.dtype != "int8")
      throw Error("--runs: '" + item + "': dtype must be f32, bf16 or int8");
    r.batch = std::stoll(batch);
    if (r.batch < 1) throw Error("--runs: '" + item + "': batch must be >= 1");
    runs.push_back(r);
  }
  return runs;
}


clipcap::DecodeOptions fixed_length(int tokens) {
  clipcap::DecodeOptions opts;  // greedy
  opts.max_len = tokens;
  opts.min_len = tokens;
  return opts;
}

// What one decoding step (one new token per row) must at least do: read the weights of GPT-2's
// products and LM head once (embedding lookups and layer norms are negligible), and 2 FLOP per
// weight per row. Attention over the short cache is left out (24 positions here).
struct DecodeStepCost {
  int64_t weight_bytes = 0, flop_per_row = 0;
};

DecodeStepCost decode_step_cost(clipcap::Captioner& cap) {
  DecodeStepCost c;
  auto& g = *cap.gpt2();
  for (const auto& p : g.named_parameters()) {
    const std::string& name = p.key();
    if (name.rfind("wte.", 0) == 0 || name.rfind("wpe.", 0) == 0 || p.value().dim() < 2) continue;
    c.weight_bytes += p.value().numel() * p.value().element_size();
    c.flop_per_row += 2 * p.value().numel();
  }
  if (!g.lm_head.defined()) {  // tied: the head streams wte
    c.weight_bytes += g.wte->weight.numel() * g.wte->weight.element_size();
    c.flop_per_row += 2 * g.wte->weight.numel();
  }
  return c;
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Seconds spent per phase of one cached run, to see where the time goes.
struct Phases {
  double clip = 0, mapping = 0, decode = 0;
};

// clipcap's path: the batch through CLIP and the mapping, then generate() with the KV cache
// (what Captioner::generate_tokens does for a native model, split to time the phases).
TokenLists caption_cached(clipcap::Captioner& cap, const torch::Tensor& pixels, int tokens, Phases* phases = nullptr) {
  auto t0 = Clock::now();
  torch::Tensor embeds = cap.embed_images(pixels);  // (B, 768) float32
  auto t1 = Clock::now();
  torch::Tensor prefix = cap.prefix(embeds);  // (B, E, D)
  auto t2 = Clock::now();
  TokenLists ids = clipcap::generate(cap.gpt2(), prefix, fixed_length(tokens), kEos);
  if (phases) *phases = {std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(),
                         seconds_since(t2)};
  return ids;
}

// Greedy with EOS banned, the whole sequence through GPT-2 each step: the reference for --check.
TokenLists caption_recompute(clipcap::Captioner& cap, const torch::Tensor& pixels, int tokens) {
  auto& g = *cap.gpt2();
  torch::Tensor x = cap.prefix(cap.embed_images(pixels));  // (B, E, D)
  TokenLists out(pixels.size(0));
  for (int step = 0; step < tokens; ++step) {
    torch::Tensor logits = g.logits(g.forward(x).select(1, -1)).to(torch::kFloat);  // (B, V)
    logits.select(1, kEos).fill_(-std::numeric_limits<float>::infinity());
    torch::Tensor next = logits.argmax(-1);  // (B)
    for (int64_t b = 0; b < next.size(0); ++b) out[b].push_back(next[b].item<int64_t>());
    x = torch::cat({x, g.embed(next.unsqueeze(1)).to(x.scalar_type())}, 1);  // (B, E+step+1, D)
  }
  return out;
}

// Upstream's Net.forward (LEGACY.md, "The legacy algorithm") one image at a time, with EOS
// banned so that every image gets `tokens` tokens, exactly as py_caption_baseline.py does.
TokenLists caption_upstream(clipcap::Captioner& cap, const torch::Tensor& pixels, int tokens) {
  auto& g = *cap.gpt2();
  const torch::Tensor& wte = g.wte->weight;  // (V, D)
  const torch::Tensor& wpe = g.wpe->weight;  // (n_positions, D)
  TokenLists out;
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    torch::Tensor prefix = cap.prefix(cap.embed_images(pixels.slice(0, i, i + 1)))[0];  // (E, D)
    torch::Tensor start = torch::cat({wte[kEos].unsqueeze(0), prefix});                 // (1+E, D)
    std::vector<int64_t> ids;
    for (int step = 0; step < tokens; ++step) {
      torch::Tensor emb = ids.empty() ? start  // step 0: the same tensor, so += below changes start
                                      : torch::cat({start, wte.index_select(0, torch::tensor(ids))});  // (T, D)
      emb.add_(wpe.slice(0, 0, emb.size(0)));                              // by hand; GPT-2 adds it again
      torch::Tensor logits = g.logits(g.forward(emb.unsqueeze(0)))[0];     // (T, V): every row, as HF does
      torch::Tensor probs = torch::softmax(logits.to(torch::kFloat), -1);  // upstream: argmax(softmax(l / T))
      torch::Tensor last = probs[-1].clone();                              // (V)
      last[kEos] = -1.0f;  // EOS banned: a fixed number of tokens
      ids.push_back(last.argmax().item<int64_t>());
    }
    out.push_back(std::move(ids));
  }
  return out;
}

// The core's own legacy path (model/legacy_captioner.h), one image at a time. It stops at EOS,
// which random weights almost never pick; a shorter caption fails the run's token count check.
TokenLists caption_legacy(clipcap::Captioner& cap, const torch::Tensor& pixels, int tokens) {
  TokenLists out;
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    torch::Tensor prefix = cap.prefix(cap.embed_images(pixels.slice(0, i, i + 1)))[0];  // (E, D)
    out.push_back(clipcap::legacy_generate(*cap.gpt2(), prefix, tokens));
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int run(int argc, char** argv) {
  BenchOptions o;
  CLI::App app{"clipcap captioning benchmark (see bench/README.md)"};
  app.add_option("--runs", o.runs, "comma-separated algo:dtype:batch; algo cached|upstream|legacy, dtype f32|bf16|int8")
      ->capture_default_str();
  app.add_option("--tokens", o.tokens, "generated tokens per image")->capture_default_str();
  app.add_option("-t,--threads", o.threads, "libtorch intra-op threads")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed runs per configuration")->capture_default_str();
  app.add_option("--reps", o.reps, "timed runs per configuration (median reported)")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random weights and pixels")->capture_default_str();
  app.add_flag("--probes", o.probes, "first measure read bandwidth and the f32/bf16 GEMM peaks");
  app.add_flag("--check", o.check, "first check cached decoding == full recompute (f32, batch 2)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.tokens < 1 || o.reps < 1 || o.warmup < 0) throw Error("--tokens and --reps must be >= 1, --warmup >= 0");
  const std::vector<Run> runs = parse_runs(o.runs);

  clipcap::RuntimeOptions rt;
  rt.threads = o.threads;
  clipcap::apply_runtime(rt);
  torch::NoGradGuard no_grad;
  std::cerr << "cpp: libtorch " << TORCH_VERSION << ", threads " << at::get_num_threads() << "\n";
  std::map<std::string, clipcap::Captioner> models;  // by dtype, each built from the same seed
  auto model_for = [&](const std::string& dtype) -> clipcap::Captioner& {
    auto it = models.find(dtype);
    if (it != models.end()) return it->second;
    clipcap::RuntimeOptions as;
    as.dtype = dtype;
    it = models.emplace(dtype, clipcap::bench::random_captioner(as.torch_dtype(), o.seed)).first;
    if (as.int8_weights()) it->second.quantize_int8();  // int8 weights, f32 activations
    it->second.freeze_weights();  // as the executables load it (CLIPCAP_PLAIN_WEIGHTS=1: unpacked)
    return it->second;
  };

  if (o.probes) {
    const nlohmann::json rec = {{"impl", "cpp"},
                                {"probe", "hardware"},
                                {"threads", at::get_num_threads()},
                                {"read_gb_per_s", clipcap::bench::read_bandwidth_gb_per_s()},
                                {"gemm_f32_gflop_per_s", clipcap::bench::gemm_peak_gflop_per_s(torch::kFloat32)},
                                {"gemm_bf16_gflop_per_s", clipcap::bench::gemm_peak_gflop_per_s(torch::kBFloat16)}};
    std::fprintf(stderr, "cpp: probes: read %.1f GB/s, GEMM f32 %.0f GFLOP/s, bf16 %.0f GFLOP/s\n",
                 rec["read_gb_per_s"].get<double>(), rec["gemm_f32_gflop_per_s"].get<double>(),
                 rec["gemm_bf16_gflop_per_s"].get<double>());
    std::cout << rec.dump() << std::endl;
  }

  if (o.check) {
    torch::Tensor px = torch::randn({2, 3, 224, 224});
    if (caption_cached(model_for("f32"), px, o.tokens) != caption_recompute(model_for("f32"), px, o.tokens))
      throw Error("--check: KV-cached tokens differ from full recompute");
    std::cerr << "cpp: check ok: cached == recompute\n";
  }

  for (const Run& r : runs) {
    clipcap::Captioner& model = model_for(r.dtype);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed + 1);
    torch::Tensor px = at::randn({r.batch, 3, 224, 224}, gen);  // (B, 3, 224, 224) float32, as a processor gives
    Phases phases;
    std::vector<double> clip_s, mapping_s, decode_s;
    auto caption = [&](const torch::Tensor& p) {
      if (r.algo == "cached") return caption_cached(model, p, o.tokens, &phases);
      if (r.algo == "upstream") return caption_upstream(model, p, o.tokens);
      return caption_legacy(model, p, o.tokens);
    };
    const bool per_image = r.algo != "cached";  // a warm-up on one image is enough
    for (int i = 0; i < o.warmup; ++i) caption(per_image ? px.slice(0, 0, 1) : px);
    std::vector<double> times;
    for (int i = 0; i < o.reps; ++i) {
      auto t0 = Clock::now();
      TokenLists ids = caption(px);
      times.push_back(seconds_since(t0));
      clip_s.push_back(phases.clip);
      mapping_s.push_back(phases.mapping);
      decode_s.push_back(phases.decode);
      for (const auto& row : ids)
        if (static_cast<int>(row.size()) != o.tokens) throw Error("a caption has " + std::to_string(row.size()) + " tokens");
    }
    const double med = median(times);
    nlohmann::json rec = {{"impl", "cpp"},       {"algo", r.algo},     {"dtype", r.dtype},
                          {"batch", r.batch},    {"tokens", o.tokens}, {"threads", at::get_num_threads()},
                          {"reps", o.reps},      {"median_s", med},    {"images_per_s", r.batch / med},
                          {"times_s", times}};
    if (r.algo == "cached") {
      rec["phases_median_s"] = {{"clip", median(clip_s)}, {"mapping", median(mapping_s)}, {"decode", median(decode_s)}};
      const DecodeStepCost cost = decode_step_cost(model);
      rec["decode_step"] = {{"weight_bytes", cost.weight_bytes}, {"flop_per_row", cost.flop_per_row}};
    }
    std::fprintf(stderr, "cpp: %s %s batch %lld: median %.1f ms, %.2f img/s\n", r.algo.c_str(), r.dtype.c_str(),
                 static_cast<long long>(r.batch), med * 1e3, r.batch / med);
    std::cout << rec.dump() << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main("caption_bench", [&] { return run(argc, argv); });
}
