// Several PEFT adapters served over one frozen base model in the same batch (multi-LoRA): each
// targeted Linear carries every adapter's A/B for that module and adds, to each row, the delta of
// the adapter that row's request asked for. Rows are routed in contiguous segments per adapter.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/nn.h"

namespace forge::peft {

struct LoraSegment {
  int64_t begin, end;  // rows [begin, end) of the flattened input
  int64_t adapter;     // 1-based adapter index; 0: base model only
};

class MultiLora {
 public:
  explicit MultiLora(nn::Module& model) : model_(model) {}
  // Loads the PEFT adapter in dir (its modules must be Linear layers of the model, rank at most
  // max_rank); returns its 1-based index.
  int64_t add(const std::string& dir, int64_t max_rank);
  // Routing of the rows of the next forward passes.
  void route(std::vector<LoraSegment> segments);
  int64_t size() const { return count_; }

  struct Routing {
    std::vector<LoraSegment> segments;
  };

 private:
  nn::Module& model_;
  std::shared_ptr<Routing> routing_ = std::make_shared<Routing>();
  int64_t count_ = 0;
};

}  // namespace forge::peft
