// Video frames tiled into one picture, for vision-language models that read a whole clip from one
// image (ShareCaptioner-Video's fast captioning): frames in time order, left to right then top to
// bottom, each scaled to the same tile size.
//
//   clipcap::Image grid = clipcap::tile_frames(frames, {/*columns=*/1, /*tile_width=*/336});
//   // 1 column: a tall image, frame 0 at the top
#pragma once

#include <vector>

#include "image/image_io.h"

namespace clipcap {

struct GridLayout {
  int columns = 1;        // tiles per row
  int tile_width = 336;   // pixels; the tile height keeps the first frame's aspect ratio
};

// Error when frames is empty or the layout is out of range (columns < 1, tile_width < 16).
Image tile_frames(const std::vector<Image>& frames, const GridLayout& layout);

// The tile size tile_frames uses for a frame of this size: {width, height}.
std::pair<int64_t, int64_t> grid_tile_size(int64_t frame_width, int64_t frame_height, const GridLayout& layout);

}  // namespace clipcap
