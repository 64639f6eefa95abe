// Small helpers shared by the dataset tests: tiny PNGs and caption files in a temp directory.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "common/atomic_file.h"
#include "image/image_io.h"

namespace clipcap::test {

// A w x h PNG whose pixels depend on `seed`, so every image embeds differently.
inline void write_test_png(const std::string& path, int seed, int w = 24, int h = 18) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  uint32_t x = 2166136261u ^ static_cast<uint32_t>(seed * 7919);
  for (auto& p : img.pixels) {
    x = x * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(x >> 24);
  }
  write_png(path, img);
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace clipcap::test
