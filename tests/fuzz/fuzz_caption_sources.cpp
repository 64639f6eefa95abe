// libFuzzer target: the caption file parsers (data/dataset_sources.h). The first byte picks the
// format and its options (separator, split column, lower-casing), the rest is the file. Whatever
// the text, rows are items or recorded problems, and each item has an image and a caption.
#include <cstdlib>

#include "data/dataset_sources.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* formats[] = {"flickr", "karpathy", "coco", "jsonl", "csv"};
  clipcap::SourceOptions opts;
  opts.format = formats[(data[0] & 0x07) % 5];
  opts.csv_separator = (data[0] & 0x08) ? ';' : ',';
  opts.split_column = (data[0] & 0x10) ? "split" : "";
  opts.lowercase = (data[0] & 0x20) != 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  clipcap::fuzz::refused_or_ok([&] {
    const clipcap::CaptionSource src = clipcap::parse_caption_source(text, "captions.txt", opts);
    for (const auto& item : src.items)
      if (item.captions.empty()) std::abort();  // an item always carries a caption
  });
  return 0;
}
