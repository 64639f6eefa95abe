// What a client asks the server for, read from the two request shapes it accepts:
//  - OpenAI chat completions: {"model", "messages": [{"role": "user", "content": [{"type":
//    "image_url", "image_url": {"url": "data:image/png;base64,..."}}, {"type": "text", ...}]}],
//    "max_tokens", "temperature", "top_p", "n", "seed", "stream"};
//  - /v1/captions: the image bytes as the body (or a multipart field), options in the query.
// Every problem is an ApiError (serve/api_error.h) naming the field; images are decoded here, on
// the connection's thread, with the pixel limit checked before decoding.
//
// Decoding: the model's defaults, then temperature 0 -> greedy, temperature > 0 -> sampling at
// that temperature (top_p, seed apply); max_tokens -> max_len. Choice i of n samples with seed + i
// (greedy choices are all the same caption).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "image/image_io.h"
#include "model/decode_options.h"

namespace clipcap {

struct RequestLimits {
  int64_t max_image_pixels = 40'000'000;  // --max-image-pixels: refused from the header, before decoding
  int max_tokens = 256;                   // --max-tokens: the most a request may ask for
  int max_n = 16;                         // choices per request
  int max_images = 16;                    // images per request (captioned together: their mean embedding)
  std::string file_root;                  // --allow-file-dir: file:// URLs below it ("" = none)
};

struct CaptionRequest {
  std::string model;               // as asked ("" in /v1/captions)
  std::vector<Image> images;
  std::string text;                // the user's text parts: recorded, not read by a CLIP-prefix model
  DecodeOptions decoding;          // choice 0's
  int n = 1;
  bool stream = false;

  DecodeOptions choice(int i) const;  // choice i's options (seed + i when sampling)
};

// body: the request's JSON text. 400 for malformed JSON, wrong types, missing fields, bad images;
// 413 for an image over the pixel limit; 422 for values out of range.
CaptionRequest parse_chat_request(const std::string& body, const DecodeOptions& defaults, const RequestLimits& limits);

// bytes: one image; params: the query's options (max_tokens, temperature, top_p, n, seed).
CaptionRequest parse_caption_request(const std::string& bytes, const std::map<std::string, std::string>& params,
                                     const DecodeOptions& defaults, const RequestLimits& limits);

}  // namespace clipcap
