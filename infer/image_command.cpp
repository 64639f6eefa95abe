#include "infer/image_command.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

#include "common/error.h"
#include "image/caption_render.h"
#include "image/image_io.h"
#include "infer/cue.h"
#include "backend/caption_backend.h"

namespace fs = std::filesystem;

namespace clipcap {

std::string render_path(const std::string& render_dir, const std::string& image_path, int64_t width, int64_t height) {
  const std::string name = fs::path(image_path).stem().string() + "-R" + std::to_string(std::max(width, height)) + ".jpg";
  return (fs::path(render_dir) / name).string();
}

int64_t caption_image_files(CaptionBackend& backend, const std::vector<std::string>& files,
                            const ImageCaptionOptions& opts, std::ostream& out, std::ostream& err) {
  if (!opts.render_dir.empty()) {
    std::error_code ec;
    fs::create_directories(opts.render_dir, ec);
    if (ec) throw Error(opts.render_dir + ": cannot create the render directory (" + ec.message() + ")");
  }
  int64_t failed = 0;
  nlohmann::json all = nlohmann::json::array();
  const size_t batch_size = static_cast<size_t>(std::max(1, backend.image_batch()));
  for (size_t begin = 0; begin < files.size(); begin += batch_size) {
    const size_t end = std::min(files.size(), begin + batch_size);
    std::vector<Image> batch;
    std::vector<std::string> errors(end - begin);
    for (size_t i = begin; i < end; ++i) {
      try {
        batch.push_back(read_image(files[i]));
      } catch (const Error& e) {
        errors[i - begin] = e.what();
      }
    }
    const std::vector<Caption> captions = backend.caption_images(batch, opts.decoding);
    size_t next = 0;
    for (size_t i = begin; i < end; ++i) {
      std::string& error = errors[i - begin];
      std::string caption;
      int64_t usage_prompt = 0, usage_of_item = -1;
      nlohmann::json reranked;
      if (error.empty()) {
        const Image& img = batch[next];
        const Caption& c = captions[next++];
        caption = c.text;
        reranked = rerank_json(c.rerank);
        usage_prompt = c.prompt_tokens;
        usage_of_item = c.tokens;
        if (!c.error.empty()) error = files[i] + ": " + c.error;  // a remote endpoint gave up on it
        if (error.empty() && !opts.render_dir.empty()) {
          try {
            write_jpeg(render_path(opts.render_dir, files[i], img.width, img.height), render_caption(img, caption));
          } catch (const Error& e) {
            error = e.what();
          }
        }
      }
      if (!error.empty()) {
        ++failed;
        err << "clipcap-infer: error: " << error << "\n";
      }
      nlohmann::json item = {{"path", files[i]}};
      if (error.empty() || !caption.empty()) item["caption"] = caption;
      if (backend.reads_prompts() && usage_of_item >= 0)  // a remote endpoint's count for this image
        item["usage"] = {{"prompt_tokens", usage_prompt}, {"completion_tokens", usage_of_item}};
      if (!reranked.is_null()) item["rerank"] = reranked;
      if (!error.empty()) item["error"] = error;
      switch (opts.output) {
        case ImageOutput::kLines: out << one_line(caption) << "\n"; break;
        case ImageOutput::kJsonl: out << item.dump() << "\n"; break;
        case ImageOutput::kJson: all.push_back(std::move(item)); break;
      }
    }
    out.flush();
  }
  if (opts.output == ImageOutput::kJson) out << all.dump(2) << "\n";
  return failed;
}

}  // namespace clipcap
