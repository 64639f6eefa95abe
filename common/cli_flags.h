// Command-line flags every clipcap executable shares, declared once so names, help and defaults
// agree everywhere. --help shows each default, read from the options structs.
//
//   CLI::App app{"clipcap-infer"};
//   clipcap::RuntimeOptions rt;
//   clipcap::add_runtime_flags(app, rt);                  // --threads --dtype --device
//   clipcap::add_table_flags(app, some_table, values, "Group");   // one flag per row of an OptionTable
//   if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;   // --help, usage errors
//   // defaults from elsewhere (a model's config.json), overridden only by the flags actually given:
//   Values v = clipcap::given_table_flags(app, some_table, values, defaults);
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <variant>

#include "common/option_table.h"
#include "common/runtime.h"

namespace clipcap {

void add_runtime_flags(CLI::App& app, RuntimeOptions& opts);

// The option named `flag` was given on the command line of app or of one of its parsed subcommands.
bool flag_given(const CLI::App& app, const std::string& flag);

// One flag per field of `table` that has flags, writing into `values` (whose values --help shows
// as the defaults).
template <typename T>
void add_table_flags(CLI::App& app, const OptionTable<T>& table, T& values, const std::string& group) {
  for (const auto& f : table.fields()) {
    if (f.flags.empty()) continue;
    std::visit(
        [&](auto member) {
          auto& v = values.*member;
          if constexpr (std::is_same_v<std::decay_t<decltype(v)>, bool>) {
            app.add_flag(f.flags, v, f.help)->group(group);
          } else {
            app.add_option(f.flags, v, f.help)->capture_default_str()->group(group);
          }
        },
        f.member);
  }
}

// base, with every field whose flag was given copied from `flags`.
template <typename T>
T given_table_flags(const CLI::App& app, const OptionTable<T>& table, const T& flags, T base) {
  for (const auto& f : table.fields())
    if (!f.flags.empty() && flag_given(app, f.flag()))
      std::visit([&](auto member) { base.*member = flags.*member; }, f.member);
  return base;
}

// Parses; returns an exit code when the program should stop: 0 after --help/--version, 2 after a
// usage error (printed on stderr as "<program>: error: ..." with a hint to --help).
std::optional<int> parse_flags(CLI::App& app, int argc, char** argv);

}  // namespace clipcap
