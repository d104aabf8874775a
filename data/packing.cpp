// Row planning (greedy packing in the epoch's order) and batch assembly with shifted labels.
#include "data/packing.h"

#include <algorithm>

#include "core/error.h"

namespace forge::data {
namespace {
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  uint64_t s = seed;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[splitmix(s) % uint64_t(i + 1)]);  // Fisher-Yates
  return p;
}

Batcher::Batcher(const ExampleSet& set, int64_t seq_len, int64_t batch_size, bool packing, bool shuffle, uint64_t seed,
                 int64_t group)
    : set_(set), seq_len_(seq_len), batch_size_(batch_size), group_(group), packing_(packing), shuffle_(shuffle),
      seed_(seed) {
  FORGE_CHECK(set.size() > 0, "no examples to batch");
  FORGE_CHECK(seq_len >= 2 && batch_size >= 1, "bad batch shape ", batch_size, "x", seq_len);
  FORGE_CHECK(group >= 1 && set.size() % group == 0 && batch_size % group == 0 && (group == 1 || !packing),
              "batching groups of ", group, ": ", set.size(), " examples, ", batch_size, " rows per batch",
              packing ? ", packing on" : "");
}

const std::vector<std::vector<int64_t>>& Batcher::rows(int64_t epoch) const {
  if (epoch == rows_epoch_) return rows_;
  // The order of the groups (single examples when group_ is 1), then their examples in turn.
  const int64_t groups = set_.size() / group_;
  std::vector<int64_t> group_order;
  if (shuffle_) {
    group_order = seeded_permutation(groups, seed_ * 1000003ull + uint64_t(epoch));  // a new order each epoch
  } else {
    for (int64_t i = 0; i < groups; ++i) group_order.push_back(i);
  }
  std::vector<int64_t> order;
  for (int64_t g : group_order)
    for (int64_t k = 0; k < group_; ++k) order.push_back(g * group_ + k);
  rows_.clear();
  int64_t used = seq_len_;
  for (int64_t e : order) {
    const int64_t len = std::min(set_.length(e), seq_len_);
    if (!packing_ || used + len > seq_len_) {
      rows_.emplace_back();
      used = 0;
    }
    rows_.back().push_back(e);
    used += len;
  }
  rows_epoch_ = epoch;
  return rows_;
}

int64_t Batcher::num_batches(int64_t epoch) const {
  return (int64_t(rows(epoch).size()) + batch_size_ - 1) / batch_size_;
}

Batch Batcher::batch(int64_t epoch, int64_t index, int64_t row_begin, int64_t row_end) const {
  const auto& all = rows(epoch);
  FORGE_CHECK(index >= 0 && index < num_batches(epoch), "batch ", index, " out of range for epoch ", epoch);
  const int64_t in_batch = std::min<int64_t>(batch_size_, int64_t(all.size()) - index * batch_size_);
  row_end = std::min(row_end, in_batch);
  row_begin = std::min(row_begin, row_end);
  const int64_t first = index * batch_size_ + row_begin, B = row_end - row_begin;
  int64_t T = 0;
  bool multi_doc = false;
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    for (int64_t e : all[first + b]) n += std::min(set_.length(e), seq_len_);
    T = std::max(T, n);
    multi_doc |= all[first + b].size() > 1;
  }
  Batch out;
  out.ids = Tensor::zeros({B, T}, DType::I64);
  out.labels = Tensor::full({B, T}, -100, DType::I64);
  out.positions = Tensor::zeros({B, T}, DType::I64);
  if (multi_doc) out.doc_ids = Tensor::full({B, T}, -1, DType::I32);  // padding: its own document
  int64_t* ids = out.ids.data<int64_t>();
  int64_t* labels = out.labels.data<int64_t>();
  int64_t* pos = out.positions.data<int64_t>();
  int32_t* doc = multi_doc ? out.doc_ids.data<int32_t>() : nullptr;
  for (int64_t b = 0; b < B; ++b) {
    out.examples.push_back(all[first + b].front());
    int64_t t = b * T;
    int32_t d = 0;
    for (int64_t e : all[first + b]) {
      const int64_t n = std::min(set_.length(e), seq_len_), o = set_.offsets[e];
      for (int64_t i = 0; i < n; ++i, ++t) {
        ids[t] = set_.tokens[o + i];
        pos[t] = i;
        if (doc) doc[t] = d;
        if (i + 1 < n && set_.mask[o + i + 1]) {
          labels[t] = set_.tokens[o + i + 1];
          ++out.targets;
        }
      }
      out.tokens += n;
      ++d;
    }
  }
  return out;
}

}  // namespace forge::data
