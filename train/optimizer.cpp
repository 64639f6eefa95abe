#include "train/optimizer.h"

#include <ATen/Parallel.h>
#include <c10/util/string_utils.h>
#include <torch/optim/adamw.h>
#include <torch/torch.h>

#include <cmath>

namespace clipcap {

namespace {

// The scalars of one Adam update, as libtorch's kernels see them (float for float tensors).
struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias_correction2, eps, neg_step_size, weight_decay;
};

// Adam::step's tensor ops for one parameter, element by element in the same order:
// g += wd * p; m = m * b1 + (1 - b1) * g; v = v * b2 + (1 - b2) * g * g;
// denom = sqrt(v) / sqrt(bc2) + eps; p += (-lr / bc1) * m / denom.
// Branch-free, so that the compiler vectorises it (this file is built with -O3 -fno-math-errno:
// a sqrt that may set errno is a call, which keeps the loop scalar and made this step slower than
// the eight tensor ops it replaces). Vector sqrt and division round like the scalar ones, and
// contraction stays off (ISO C++), so the result is the same bit for bit.
template <bool kWeightDecay>
void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t begin, int64_t end, const AdamScalars& s) {
  const AdamScalars c = s;  // locals: no aliasing question for the vectoriser
  for (int64_t i = begin; i < end; ++i) {
    const float grad = kWeightDecay ? g[i] + c.weight_decay * p[i] : g[i];
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * grad;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / c.sqrt_bias_correction2 + c.eps;
    p[i] = p[i] + c.neg_step_size * mi / denom;
  }
}

bool fusable(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.layout() == torch::kStrided &&
         t.is_contiguous() && t.numel() == like.numel();
}

}  // namespace

torch::Tensor FusedAdam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "Adam does not support sparse gradients");
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto it = state_.find(key);
      if (it == state_.end()) {  // as Adam initialises its state
        auto st = std::make_unique<torch::optim::AdamParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (o.amsgrad()) st->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(st)).first;
      }
      auto& st = static_cast<torch::optim::AdamParamState&>(*it->second);
      st.step(st.step() + 1);
      const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
      const double bias_correction1 = 1 - std::pow(beta1, st.step());
      const double bias_correction2 = 1 - std::pow(beta2, st.step());
      const double step_size = o.lr() / bias_correction1;
      torch::Tensor grad = p.grad();

      if (!o.amsgrad() && fusable(p, p) && fusable(grad, p) && fusable(st.exp_avg(), p) && fusable(st.exp_avg_sq(), p)) {
        const AdamScalars s{static_cast<float>(beta1),
                            static_cast<float>(1 - beta1),
                            static_cast<float>(beta2),
                            static_cast<float>(1 - beta2),
                            static_cast<float>(std::sqrt(bias_correction2)),
                            static_cast<float>(o.eps()),
                            static_cast<float>(-step_size),
                            static_cast<float>(o.weight_decay())};
        float* pw = p.data_ptr<float>();
        const float* gw = grad.data_ptr<float>();
        float* mw = st.exp_avg().data_ptr<float>();
        float* vw = st.exp_avg_sq().data_ptr<float>();
        at::parallel_for(0, p.numel(), 1 << 16, [&](int64_t b, int64_t e) {
          if (s.weight_decay != 0.0f)
            adam_update<true>(pw, gw, mw, vw, b, e, s);
          else
            adam_update<false>(pw, gw, mw, vw, b, e, s);
        });
        continue;
      }
      // libtorch's Adam::step for this parameter.
      if (o.weight_decay() != 0) grad = grad.add(p, o.weight_decay());
      st.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
      st.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      torch::Tensor denom;
      if (o.amsgrad()) {
        torch::max_out(st.max_exp_avg_sq(), st.exp_avg_sq(), st.max_exp_avg_sq());
        denom = (st.max_exp_avg_sq().sqrt() / std::sqrt(bias_correction2)).add_(o.eps());
      } else {
        denom = (st.exp_avg_sq().sqrt() / std::sqrt(bias_correction2)).add_(o.eps());
      }
      p.addcdiv_(st.exp_avg(), denom, -step_size);
    }
  }
  return loss;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<torch::Tensor> params) {
  if (cfg.optimizer == "adamw") {
    torch::optim::AdamWOptions o(cfg.lr);
    o.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_eps).weight_decay(cfg.weight_decay);
    return std::make_unique<torch::optim::AdamW>(std::move(params), o);
  }
  torch::optim::AdamOptions o(cfg.lr);
  o.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_eps).weight_decay(cfg.weight_decay);
  return std::make_unique<FusedAdam>(std::move(params), o);
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

double current_lr(torch::optim::Optimizer& opt) { return opt.param_groups().front().options().get_lr(); }

void clear_gradients(torch::optim::Optimizer& opt) {
  for (auto& group : opt.param_groups())
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
}

}  // namespace clipcap
