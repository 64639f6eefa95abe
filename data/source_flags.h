// The flags that say how to read a caption file and split its images, declared once for every
// command that reads one (clipcap-data build, clipcap-train clip), so both split a dataset the
// same way from the same values.
//
//   clipcap::SourceFlags f;
//   clipcap::add_caption_source_flags(*cmd, f, "Data");   // --format --image-column ... --seed --train --val
//   ... parse ...
//   opts.source = f.source_options();                      // Error naming --csv-separator
//   opts.split = f.split;
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "data/dataset_sources.h"
#include "data/dataset_split.h"

namespace clipcap {

struct SourceFlags {
  SourceOptions source;
  std::string separator = ",";  // --csv-separator, one character
  SplitOptions split;

  SourceOptions source_options() const;  // source with the separator checked and set
};

void add_caption_source_flags(CLI::App& cmd, SourceFlags& flags, const std::string& group);

}  // namespace clipcap
