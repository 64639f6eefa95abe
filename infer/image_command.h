// `clipcap-infer image`: caption image files in batches and print the captions.
//
//   clipcap::ImageCaptionOptions o;  o.output = clipcap::ImageOutput::kJsonl;  o.render_dir = "renders";
//   int64_t failed = clipcap::caption_image_files(backend, files, o, std::cout, std::cerr);
//
// Images are read and captioned the backend's image_batch() at a time.
//
// Output on `out`, in input order:
//   kLines  one caption per line; an image that cannot be read gets an EMPTY line (line N is
//           always image N); newlines inside a caption are printed as spaces.
//   kJsonl  one line per image as it is done: {"path": ..., "caption": ...} or {"path": ..., "error": ...};
//           through a remote backend also "usage": {"prompt_tokens", "completion_tokens"}
//   kJson   one JSON array of those objects, printed at the end.
// Errors also go to `err` as "clipcap-infer: error: <path>: <problem>", one line each.
// render_dir: each captioned image is also written as <render_dir>/<stem>-R<SIZE>.jpg, the image
// with its caption drawn under it (image/caption_render.h), SIZE being the image's longest side in
// pixels (upstream named renders by its model size, S or L, which says nothing about the file).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "model/decode_options.h"

namespace clipcap {

class CaptionBackend;

enum class ImageOutput { kLines, kJson, kJsonl };

struct ImageCaptionOptions {
  ImageOutput output = ImageOutput::kLines;
  std::string render_dir;                 // "" = no rendered images
  DecodeOptions decoding;                 // resolved decoding options
};

// <render_dir>/<stem>-R<longest side>.jpg
std::string render_path(const std::string& render_dir, const std::string& image_path, int64_t width, int64_t height);

// Returns how many images failed (unreadable, or their render could not be written).
int64_t caption_image_files(CaptionBackend& backend, const std::vector<std::string>& files,
                            const ImageCaptionOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace clipcap
