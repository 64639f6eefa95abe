// Command-line flags every clipcap executable shares, declared once so names, help and defaults
// agree everywhere. --help shows each default, read from the options structs.
//
//   CLI::App app{"clipcap-infer"};
//   clipcap::RuntimeOptions rt;  clipcap::DecodeOptions dec;
//   clipcap::add_runtime_flags(app, rt);      // --threads --dtype --device
//   clipcap::add_decode_flags(app, dec);      // --max-len --beam-size --sample --top-p ...
//   if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;   // --help, usage errors
//   // the model's config.json "decoding" defaults, overridden only by flags actually given:
//   clipcap::DecodeOptions opts = clipcap::given_decode_flags(app, dec, model.config().decoding);
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

#include "common/runtime.h"
#include "model/decoding.h"

namespace clipcap {

void add_runtime_flags(CLI::App& app, RuntimeOptions& opts);
void add_decode_flags(CLI::App& app, DecodeOptions& opts);

// base with every decode flag the user gave on the command line (in app or one of its parsed
// subcommands) copied from `flags`; flags left out keep base's value.
DecodeOptions given_decode_flags(const CLI::App& app, const DecodeOptions& flags, DecodeOptions base);

// Parses; returns an exit code when the program should stop: 0 after --help/--version, 2 after a
// usage error (printed on stderr as "<program>: error: ..." with a hint to --help).
std::optional<int> parse_flags(CLI::App& app, int argc, char** argv);

}  // namespace clipcap
