// Batches for training: examples in a seeded order per epoch, packed several to a row (each
// keeping its own positions and a document id, so attention never crosses documents) or one per
// row, with next-token labels that are -100 wherever there is no loss.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"

namespace forge::data {

struct Batch {
  Tensor ids;           // [B, T] i64 (padding: 0)
  Tensor labels;        // [B, T] i64: the next token where it is a target, else -100
  Tensor positions;     // [B, T] i64: restart at 0 for each document
  Tensor doc_ids;       // [B, T] i32 when some row holds several documents, else undefined
  std::vector<int64_t> examples;  // each row's first example (its index in the ExampleSet)
  int64_t targets = 0;  // labels that are not -100
  int64_t tokens = 0;   // tokens that are not padding
};

// 0..n-1 in an order that depends only on seed (the same on every machine).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

class Batcher {
 public:
  // seq_len: row length for packing (examples are at most this long already). group > 1: examples
  // [g * group, (g + 1) * group) stay together, one per row, in one micro-batch and in order
  // (a preference pair's chosen and rejected sides); batch_size is then a multiple of group.
  Batcher(const ExampleSet& set, int64_t seq_len, int64_t batch_size, bool packing, bool shuffle, uint64_t seed,
          int64_t group = 1);
  int64_t num_batches(int64_t epoch) const;           // micro-batches in that epoch
  // index < num_batches(epoch). Rows [row_begin, row_end) of it only (a data-parallel rank's share;
  // may be empty at the end of an epoch).
  Batch batch(int64_t epoch, int64_t index, int64_t row_begin = 0, int64_t row_end = INT64_MAX) const;
  int64_t num_rows(int64_t epoch) const { return int64_t(rows(epoch).size()); }

 private:
  const std::vector<std::vector<int64_t>>& rows(int64_t epoch) const;  // example indices per row
  const ExampleSet& set_;
  int64_t seq_len_, batch_size_, group_;
  bool packing_, shuffle_;
  uint64_t seed_;
  mutable int64_t rows_epoch_ = -1;
  mutable std::vector<std::vector<int64_t>> rows_;
};

}  // namespace forge::data
