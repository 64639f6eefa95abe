#include "common/cli_flags.h"

#include <torch/version.h>

#include <iostream>

#include "common/blas_kernels.h"

namespace clipcap {

void add_runtime_flags(CLI::App& app, RuntimeOptions& opts) {
  app.add_option("-t,--threads", opts.threads, "CPU threads (0 = all cores)")->capture_default_str()->group("Runtime");
  app.add_option("--dtype", opts.dtype, "compute dtype: f32 (reference) or bf16")->capture_default_str()->group("Runtime");
  app.add_option("--device", opts.device, "cpu or cuda")->capture_default_str()->group("Runtime");
}

void add_decode_flags(CLI::App& app, DecodeOptions& o) {
  const std::string g = "Decoding (defaults: the model's config.json, else these)";
  app.add_option("--max-len", o.max_len, "most tokens per caption (EOS included)")->capture_default_str()->group(g);
  app.add_option("--min-len", o.min_len, "no EOS before this many tokens")->capture_default_str()->group(g);
  app.add_option("-b,--beam-size,--beam", o.beam_size, "beams (1 = greedy or sampling)")->capture_default_str()->group(g);
  app.add_option("--length-penalty", o.length_penalty, "beam score = sum logprob / length^this")
      ->capture_default_str()
      ->group(g);
  app.add_flag("--sample", o.do_sample, "sample instead of taking the most likely token")->group(g);
  app.add_option("--temperature", o.temperature, "sampling: logits / temperature")->capture_default_str()->group(g);
  app.add_option("--top-k", o.top_k, "sampling: keep the k most likely tokens (0 = all)")->capture_default_str()->group(g);
  app.add_option("--top-p", o.top_p, "sampling: nucleus probability mass")->capture_default_str()->group(g);
  app.add_option("--seed", o.seed, "sampling: random seed (same seed, same captions)")->capture_default_str()->group(g);
  app.add_option("--no-repeat-ngram-size", o.no_repeat_ngram_size, "never repeat an n-gram of this size (0 = off)")
      ->capture_default_str()
      ->group(g);
}

namespace {

// The option named `flag` was given on the command line of app or of a parsed subcommand.
bool given(const CLI::App& app, const std::string& flag) {
  try {
    if (app.get_option(flag)->count() > 0) return true;
  } catch (const CLI::OptionNotFound&) {
  }
  for (const CLI::App* sub : app.get_subcommands())
    if (given(*sub, flag)) return true;
  return false;
}

}  // namespace

DecodeOptions given_decode_flags(const CLI::App& app, const DecodeOptions& f, DecodeOptions base) {
  if (given(app, "--max-len")) base.max_len = f.max_len;
  if (given(app, "--min-len")) base.min_len = f.min_len;
  if (given(app, "--beam-size")) base.beam_size = f.beam_size;
  if (given(app, "--length-penalty")) base.length_penalty = f.length_penalty;
  if (given(app, "--sample")) base.do_sample = f.do_sample;
  if (given(app, "--temperature")) base.temperature = f.temperature;
  if (given(app, "--top-k")) base.top_k = f.top_k;
  if (given(app, "--top-p")) base.top_p = f.top_p;
  if (given(app, "--seed")) base.seed = f.seed;
  if (given(app, "--no-repeat-ngram-size")) base.no_repeat_ngram_size = f.no_repeat_ngram_size;
  return base;
}

std::optional<int> parse_flags(CLI::App& app, int argc, char** argv) {
  // What a bug report needs: the version, the libtorch, the matrix kernels (common/blas_kernels.h).
  app.set_version_flag(
      "--version",
      [&app] {
        const std::string blas = blas_kernels();
        return app.get_name() + " " + CLIPCAP_VERSION + " (libtorch " + TORCH_VERSION +
               (blas.empty() ? "" : ", " + blas + " kernels") + ")";
      },
      "print the version, libtorch's and the BLAS kernels in use, and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": error: " << e.what() << "\n"
              << "Run with --help for more information.\n";
    return 2;
  }
  return std::nullopt;
}

}  // namespace clipcap
