// The datasets of a recipe: training (and eval) examples tokenised, or read back from the HDF5
// token cache in <output.dir>/data/, with the eval split made from data.eval_fraction.
#pragma once
#include <string>

#include "data/dataset.h"
#include "train/recipe.h"

namespace forge::train {

struct Datasets {
  data::ExampleSet train, eval;
  std::string fingerprint;  // of the training data and settings, kept in checkpoints
  std::string format;       // the training data's format (auto resolved)
};

// Prints one line per dataset to stderr (examples, tokens, truncations, skipped lines).
Datasets load_datasets(const Recipe& r, const data::Tokenizer& tok);

}  // namespace forge::train
