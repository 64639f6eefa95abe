#include "data/source_flags.h"

#include "common/error.h"

namespace clipcap {

SourceOptions SourceFlags::source_options() const {
  if (separator.size() != 1) throw Error("--csv-separator must be one character, got '" + separator + "'");
  SourceOptions o = source;
  o.csv_separator = separator[0];
  return o;
}

void add_caption_source_flags(CLI::App& cmd, SourceFlags& f, const std::string& group) {
  cmd.add_option("--format", f.source.format, caption_format_names())->capture_default_str()->group(group);
  cmd.add_option("--image-column", f.source.image_column, "jsonl/csv: image path key")->capture_default_str()->group(group);
  cmd.add_option("--caption-column", f.source.caption_column, "jsonl/csv: caption key")->capture_default_str()->group(group);
  cmd.add_option("--split-column", f.source.split_column, "jsonl/csv: split key (optional)")->group(group);
  cmd.add_option("--csv-separator", f.separator, "csv: field separator (one character)")->capture_default_str()->group(group);
  cmd.add_flag("--lowercase", f.source.lowercase, "lower-case the captions")->group(group);
  cmd.add_option("--seed", f.split.seed, "split seed")->capture_default_str()->group(group);
  cmd.add_option("--train", f.split.train, "train fraction of images without a given split")->capture_default_str()->group(group);
  cmd.add_option("--val", f.split.val, "val fraction (the rest is test)")->capture_default_str()->group(group);
}

}  // namespace clipcap
