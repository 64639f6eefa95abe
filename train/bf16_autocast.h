// bf16 autocast over one scope, like Python's `with torch.autocast("cpu", dtype=torch.bfloat16)`:
// matmuls and convolutions run in bf16 while the weights, their gradients and the optimizer stay
// f32. Leaving restores the previous autocast state and clears autocast's cache of bf16 weight
// copies, which go stale when the optimizer steps.
//
//   {
//     clipcap::Bf16Autocast autocast(cfg.autocast == "bf16");   // off: does nothing
//     loss = clipcap::caption_loss(captioner, batch);
//   }
//   loss.backward();
#pragma once

#include <ATen/autocast_mode.h>

namespace clipcap {

class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on) : on_(on) {
    if (!on_) return;
    was_enabled_ = at::autocast::is_cpu_enabled();
    was_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  ~Bf16Autocast() {
    if (!on_) return;
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
    at::autocast::clear_cache();
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace clipcap
