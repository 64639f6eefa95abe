#include "common/cli_flags.h"

#include <torch/version.h>

#include <iostream>

#include "common/blas_kernels.h"

namespace clipcap {

void add_runtime_flags(CLI::App& app, RuntimeOptions& opts) {
  app.add_option("-t,--threads", opts.threads, "CPU threads (0 = all cores)")->capture_default_str()->group("Runtime");
  app.add_option("--dtype", opts.dtype, "compute dtype: f32 (reference), bf16, or int8 (int8 weights, f32 activations; captioning only)")->capture_default_str()->group("Runtime");
  app.add_option("--device", opts.device, "cpu or cuda")->capture_default_str()->group("Runtime");
}

bool flag_given(const CLI::App& app, const std::string& flag) {
  try {
    if (app.get_option(flag)->count() > 0) return true;
  } catch (const CLI::OptionNotFound&) {
  }
  for (const CLI::App* sub : app.get_subcommands())
    if (flag_given(*sub, flag)) return true;
  return false;
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
