// libFuzzer target: the restricted unpickler (model/weights/pickle_reader.h) on a data.pkl alone,
// so mutations reach the opcodes without first getting through a zip archive.
#include "model/weights/pickle_reader.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string pickle(reinterpret_cast<const char*>(data), size);
  clipcap::fuzz::refused_or_ok([&] { (void)clipcap::read_state_dict_pickle(pickle, "archive/data.pkl"); });
  return 0;
}
