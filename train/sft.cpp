// Supervised finetuning: next-token cross-entropy over the target tokens, the step's loss the
// mean over all of them (train/method.h).
#include "train/dpo.h"
#include "train/grpo.h"
#include "train/method.h"

namespace forge::train {
namespace {

class Sft : public Method {
 public:
  explicit Sft(const parallel::ModelParallel& mp) : mp_(mp) {}
  double units(const data::Batch& b) const override { return double(b.targets); }
  Tensor loss_sum(const Tensor& hidden, const data::Batch& b, int64_t) override { return mp_.loss_sum(hidden, b.labels); }

 private:
  const parallel::ModelParallel& mp_;
};

}  // namespace

std::unique_ptr<Method> make_method(const MethodContext& ctx) {
  if (ctx.recipe.train.method == "dpo") return make_dpo(ctx);
  if (ctx.recipe.train.method == "grpo") return make_grpo(ctx);
  return std::make_unique<Sft>(ctx.mp);
}

}  // namespace forge::train
