#include "train/clip_pairs.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "common/strings.h"

namespace fs = std::filesystem;

namespace clipcap {

PairSet load_pairs(const std::vector<const SourceItem*>& items, const std::string& root,
                   const ImageProcessor& processor, int workers, LoadReport& report) {
  std::vector<Image> decoded(items.size());
  std::vector<std::string> errors(items.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < items.size();) {
      const std::string path = root.empty() ? items[i]->image : (fs::path(root) / items[i]->image).string();
      try {
        decoded[i] = processor.resize_and_crop(read_image(path));
      } catch (const std::exception& e) {  // an unreadable image is skipped, not fatal
        errors[i] = e.what();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();

  PairSet set;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!errors[i].empty()) {
      if (report.skipped++ == 0) report.first_error = first_line(errors[i]);
      continue;
    }
    set.images.push_back(std::move(decoded[i]));
    set.captions.push_back(items[i]->captions);
  }
  return set;
}

void tokenise(PairSet& set, const ClipBpeTokenizer& tok, std::map<std::vector<int64_t>, int32_t>& classes) {
  set.ids.clear();
  set.text_class.clear();
  for (const auto& caps : set.captions) {
    set.ids.emplace_back();
    set.text_class.emplace_back();
    for (const auto& c : caps) {
      std::vector<int64_t> ids = tok.encode(c);
      auto it = classes.emplace(ids, static_cast<int32_t>(classes.size())).first;
      set.text_class.back().push_back(it->second);
      set.ids.back().push_back(std::move(ids));
    }
  }
}

torch::Tensor pixel_batch(const ImageProcessor& processor, const std::vector<Image>& images,
                          const std::vector<int64_t>& rows, const std::vector<ImageAugmentation>& augmentations) {
  std::vector<torch::Tensor> px;
  px.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Image& image = images[rows[i]];
    const bool change = i < augmentations.size() && !augmentations[i].identity();
    px.push_back(processor.to_pixel_values(change ? augment(image, augmentations[i]) : image));
  }
  return torch::stack(px);  // (n, 3, S, S)
}

torch::Tensor id_batch(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id) {
  size_t T = 0;
  for (const auto* r : rows) T = std::max(T, r->size());
  torch::Tensor out = torch::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(T)}, pad_id, torch::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t t = 0; t < rows[i]->size(); ++t) a[i][t] = (*rows[i])[t];
  return out;  // (n, T)
}

}  // namespace clipcap
