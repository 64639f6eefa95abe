#include "model/kernels/attention_masks.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <limits>

#include "common/error.h"

namespace clipcap {

double dtype_lowest(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat: return std::numeric_limits<float>::lowest();
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    case torch::kBFloat16: return static_cast<float>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf: return static_cast<float>(std::numeric_limits<c10::Half>::lowest());
    default: throw Error(std::string("attention mask: not a floating dtype: ") + c10::toString(dtype));
  }
}

torch::Tensor padding_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  // (1 - mask) * min, exactly as HF writes it (0 * min = -0 for kept keys: adds nothing).
  torch::Tensor keep = attention_mask.to(dtype);                 // (B, S)
  return ((1.0 - keep) * dtype_lowest(dtype)).unsqueeze(1).unsqueeze(1);  // (B, 1, 1, S)
}

}  // namespace clipcap
