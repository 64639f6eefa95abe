#include "image/frame_grid.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace clipcap {

std::pair<int64_t, int64_t> grid_tile_size(int64_t frame_width, int64_t frame_height, const GridLayout& layout) {
  const int64_t w = layout.tile_width;
  const int64_t h = std::max<int64_t>(1, (w * frame_height + frame_width / 2) / std::max<int64_t>(1, frame_width));
  return {w, h};
}

Image tile_frames(const std::vector<Image>& frames, const GridLayout& layout) {
  if (frames.empty()) throw Error("image grid: no frames to tile");
  if (layout.columns < 1) throw Error("--grid-columns must be at least 1 (got " + std::to_string(layout.columns) + ")");
  if (layout.tile_width < 16) throw Error("--grid-width must be at least 16 pixels (got " + std::to_string(layout.tile_width) + ")");
  const auto [tw, th] = grid_tile_size(frames[0].width, frames[0].height, layout);
  const int64_t cols = std::min<int64_t>(layout.columns, static_cast<int64_t>(frames.size()));
  const int64_t rows = (static_cast<int64_t>(frames.size()) + cols - 1) / cols;
  Image grid;
  grid.width = cols * tw;
  grid.height = rows * th;
  grid.pixels.assign(static_cast<size_t>(grid.width * grid.height * 3), 0);  // black where a row is short
  cv::Mat canvas(static_cast<int>(grid.height), static_cast<int>(grid.width), CV_8UC3, grid.pixels.data());
  for (size_t i = 0; i < frames.size(); ++i) {
    const Image& f = frames[i];
    // const_cast: OpenCV's Mat has no const view; the source is only read.
    const cv::Mat src(static_cast<int>(f.height), static_cast<int>(f.width), CV_8UC3, const_cast<uint8_t*>(f.pixels.data()));
    const int64_t r = static_cast<int64_t>(i) / cols, c = static_cast<int64_t>(i) % cols;
    cv::Mat tile = canvas(cv::Rect(static_cast<int>(c * tw), static_cast<int>(r * th), static_cast<int>(tw), static_cast<int>(th)));
    cv::resize(src, tile, tile.size(), 0, 0, cv::INTER_AREA);
  }
  return grid;
}

}  // namespace clipcap
