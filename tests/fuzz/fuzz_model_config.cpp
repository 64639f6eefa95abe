// libFuzzer target: config.json loading: a captioner's config (CLIP, GPT-2, mapping and decoding
// sections), an HF CLIP or GPT-2 config, preprocessor_config.json and a decoding section, each
// from any JSON document. Invalid JSON is refused by the caller (read_json) before these run.
#include <nlohmann/json.hpp>

#include "model/captioner.h"
#include "model/clip.h"
#include "model/decode_options.h"
#include "model/gpt2.h"
#include "model/image_processor.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  using clipcap::fuzz::refused_or_ok;
  refused_or_ok([&] { (void)clipcap::CaptionerConfig::from_json(j, "config.json").to_json(); });
  refused_or_ok([&] { (void)clipcap::CLIPConfig::from_json(j, "config.json"); });
  refused_or_ok([&] { (void)clipcap::GPT2Config::from_json(j, "config.json"); });
  refused_or_ok([&] { (void)clipcap::ImageProcessorConfig::from_json(j, "preprocessor_config.json"); });
  refused_or_ok([&] { (void)clipcap::DecodeOptions::from_json(j, "config.json: decoding"); });
  return 0;
}
