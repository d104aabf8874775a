// Multi-LoRA serving (see multi_lora.h).
#include "peft/multi_lora.h"

#include <map>

#include "core/autograd.h"
#include "core/error.h"
#include "peft/adapter_io.h"

namespace forge::peft {
namespace {
struct Entry {
  Tensor A, B;  // [r, in], [out, r] f32
  double scale = 0;
};

class MultiLoraAdapter : public nn::LinearAdapter {
 public:
  explicit MultiLoraAdapter(std::shared_ptr<MultiLora::Routing> r) : routing(std::move(r)) {}
  Tensor forward(const Tensor& x) override {
    Tensor out;
    const int64_t in = x.size(-1);
    Tensor rows = x.reshape({-1, in});
    for (const LoraSegment& s : routing->segments) {
      auto it = entries.find(s.adapter);
      if (it == entries.end() || s.end <= s.begin) continue;
      const Entry& e = it->second;
      if (!out.defined()) out = Tensor::zeros({rows.size(0), e.B.size(0)}, x.dtype(), x.device());
      Tensor xs = rows.narrow(0, s.begin, s.end - s.begin).to(DType::F32);
      Tensor d = mul(linear(linear(xs, e.A), e.B), e.scale);
      out.narrow(0, s.begin, s.end - s.begin).copy_(d);
    }
    if (!out.defined()) return out;
    Shape shape = x.shape();
    shape.back() = out.size(1);
    return out.view(shape);
  }
  std::shared_ptr<MultiLora::Routing> routing;
  std::map<int64_t, Entry> entries;  // by adapter index
};
}  // namespace

int64_t MultiLora::add(const std::string& dir, int64_t max_rank) {
  NoGradGuard ng;
  std::map<std::string, std::shared_ptr<nn::LinearAdapter>> previous;
  for (auto& [name, m] : model_.named_modules())
    if (auto* lin = dynamic_cast<nn::Linear*>(m.get())) previous[name] = lin->adapter;
  LoraModel lora = load_adapter(model_, dir);  // attaches its own adapters; we take them over
  const int64_t index = ++count_;
  for (auto& [name, m] : model_.named_modules()) {
    auto* lin = dynamic_cast<nn::Linear*>(m.get());
    if (!lin) continue;
    auto prev = std::dynamic_pointer_cast<MultiLoraAdapter>(previous[name]);
    lin->adapter = prev;
    for (auto& [aname, a] : lora.adapters) {
      if (aname != name) continue;
      FORGE_CHECK(a->A.size(0) <= max_rank, dir, ": module ", name, " has rank ", a->A.size(0),
                  ", above the server's --max-lora-rank ", max_rank);
      if (!prev) {
        prev = std::make_shared<MultiLoraAdapter>(routing_);
        lin->adapter = prev;
      }
      prev->entries[index] = Entry{a->A.detach(), a->B.detach(), a->scale};  // on the model's device
    }
  }
  return index;
}

void MultiLora::route(std::vector<LoraSegment> segments) { routing_->segments = std::move(segments); }

}  // namespace forge::peft
