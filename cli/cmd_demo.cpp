// `forge demo`: trains a tiny 2-layer attention model on packed documents, each repeating a
// random 4-token pattern, so the model must learn to copy from earlier in its own document
// (an induction task that needs RoPE, causal attention and the per-document mask). Prints the
// next-token accuracy on held-out sequences before and after training.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "cli/commands.h"
#include "core/autograd.h"
#include "core/nn.h"
#include "train/optimizer.h"

namespace forge::cli {
namespace {
constexpr int64_t V = 16, C = 64, H = 4, D = 16, F = 128, T = 64, P = 4;

struct Layer : nn::Module {
  std::shared_ptr<nn::RMSNorm> n1 = register_module("input_layernorm", std::make_shared<nn::RMSNorm>(C));
  std::shared_ptr<nn::Linear> qkv = register_module("qkv_proj", std::make_shared<nn::Linear>(C, 3 * C, false));
  std::shared_ptr<nn::Linear> o = register_module("o_proj", std::make_shared<nn::Linear>(C, C, false));
  std::shared_ptr<nn::RMSNorm> n2 = register_module("post_attention_layernorm", std::make_shared<nn::RMSNorm>(C));
  std::shared_ptr<nn::Linear> up = register_module("up_proj", std::make_shared<nn::Linear>(C, F, false));
  std::shared_ptr<nn::Linear> down = register_module("down_proj", std::make_shared<nn::Linear>(F, C, false));

  Tensor forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq, const Tensor& docs) {
    const int64_t B = x.size(0);
    Tensor h = qkv->forward(n1->forward(x)).view({B, T, 3, H, D});
    Tensor q = rope(h.select(2, 0).transpose(1, 2), pos, inv_freq);
    Tensor k = rope(h.select(2, 1).transpose(1, 2), pos, inv_freq);
    Tensor v = h.select(2, 2).transpose(1, 2);
    AttentionOptions opt;
    opt.doc_ids = docs;
    Tensor a = scaled_dot_product_attention(q, k, v, opt).transpose(1, 2).reshape({B, T, C});
    Tensor y = add(x, o->forward(a));
    return add(y, down->forward(silu(up->forward(n2->forward(y)))));
  }
};

struct Model : nn::Module {
  std::shared_ptr<nn::Embedding> embed = register_module("embed_tokens", std::make_shared<nn::Embedding>(V, C));
  std::shared_ptr<nn::ModuleList> layers = register_module("layers", std::make_shared<nn::ModuleList>());
  std::shared_ptr<nn::RMSNorm> norm = register_module("norm", std::make_shared<nn::RMSNorm>(C));
  Model() {
    for (int i = 0; i < 2; ++i) layers->push_back(std::make_shared<Layer>());
  }
  Tensor logits(const Tensor& ids, const Tensor& pos, const Tensor& inv_freq, const Tensor& docs) {
    Tensor x = mul(embed->forward(ids), 1.0 / std::sqrt(double(C)));
    for (size_t i = 0; i < layers->size(); ++i)
      x = std::static_pointer_cast<Layer>((*layers)[i])->forward(x, pos, inv_freq, docs);
    return linear(norm->forward(x), embed->weight);  // tied head
  }
};

// A batch of packed documents. Targets before each document's second repeat are ignored: they
// cannot be predicted from context.
struct Batch {
  Tensor ids, targets, pos, docs;
};

Batch make_batch(int64_t B, Generator& g) {
  std::vector<int64_t> ids(B * T), tgt(B * T, -100), pos(B * T);
  std::vector<int32_t> docs(B * T);
  std::vector<int64_t> r = randint(0, 1 << 20, {B * T * 2}, DType::I64, &g).to_vector<int64_t>();
  size_t ri = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t t = 0, doc = 0;
    while (t < T) {
      int64_t len = std::min<int64_t>(T - t, 12 + r[ri++] % 20);
      int64_t pat[P];
      for (auto& p : pat) p = r[ri++] % V;
      for (int64_t i = 0; i < len; ++i) {
        int64_t at = b * T + t + i;
        ids[at] = pat[i % P];
        pos[at] = i;
        docs[at] = int32_t(doc);
        if (i + 1 < len && i + 1 >= P) tgt[at] = pat[(i + 1) % P];
      }
      t += len;
      ++doc;
    }
  }
  return {Tensor::from_vector(ids, {B, T}), Tensor::from_vector(tgt, {B * T}), Tensor::from_vector(pos, {B, T}),
          Tensor::from_vector(docs, {B, T})};
}

double accuracy(Model& m, const Batch& b, const Tensor& inv_freq) {
  NoGradGuard ng;
  std::vector<float> lg = m.logits(b.ids, b.pos, inv_freq, b.docs).to_float_vector();
  std::vector<int64_t> t = b.targets.to_vector<int64_t>();
  int64_t right = 0, counted = 0;
  for (size_t n = 0; n < t.size(); ++n) {
    if (t[n] < 0) continue;
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (lg[n * V + v] > lg[n * V + best]) best = v;
    right += best == t[n];
    ++counted;
  }
  return double(right) / double(std::max<int64_t>(counted, 1));
}
}  // namespace

int cmd_demo(const Args& args) {
  check_flags(args, {"--steps="});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge demo [--steps N]\n  trains a tiny attention model to copy patterns within packed documents\n"
        "  and prints held-out next-token accuracy before and after\n");
    return 0;
  }
  const int steps = int(int_flag(args, "--steps", 300, 1, 1 << 24));
  manual_seed(1234);
  Model model;
  std::vector<float> fr;
  for (int64_t i = 0; i < D / 2; ++i) fr.push_back(float(std::pow(10000.0, -2.0 * double(i) / double(D))));
  Tensor inv_freq = Tensor::from_floats(fr, {D / 2});
  Generator data_gen(1), eval_gen(2);
  Batch eval = make_batch(64, eval_gen);
  std::printf("forge demo: %lld parameters, packed documents of T=%lld tokens\n",
              (long long)model.num_parameters(), (long long)T);
  double before = accuracy(model, eval, inv_freq);
  std::printf("held-out next-token accuracy before training: %.1f%%\n", 100 * before);
  train::AdamW opt(model.parameters(), {.lr = 3e-3, .weight_decay = 0.01});
  auto start = std::chrono::steady_clock::now();
  double loss_v = 0;
  for (int step = 1; step <= steps; ++step) {
    Batch b = make_batch(16, data_gen);
    Tensor loss = cross_entropy(model.logits(b.ids, b.pos, inv_freq, b.docs).view({-1, V}), b.targets);
    loss.backward();
    opt.step();
    opt.zero_grad();
    loss_v = loss.item();
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (step % 10 == 0 || step == steps)
      std::fprintf(stderr, "\rstep %4d/%d  loss %.4f  %6.0f tok/s  ETA %4.0fs ", step, steps, loss_v,
                   double(step) * 16 * T / el, el / step * (steps - step));
  }
  std::fprintf(stderr, "\n");
  double after = accuracy(model, eval, inv_freq);
  std::printf("final training loss: %.4f\n", loss_v);
  std::printf("held-out next-token accuracy after training:  %.1f%%\n", 100 * after);
  return after > before ? 0 : 1;
}

}  // namespace forge::cli
