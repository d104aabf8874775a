// The table-driven op test: cases written by tests/reference/ops_reference.py (PyTorch, f64),
// run here on any device and dtype, compared output by output and gradient by gradient.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ops.h"

namespace forge::test {

struct OpCase {
  std::string name;
  nlohmann::json spec;          // op, args, dtype, rtol, inputs[{transpose, grad}]
  std::vector<Tensor> stored;   // inputs as stored (transposed inputs are views of these)
  Tensor out, gout;
  std::vector<Tensor> grads;    // reference gradient of each stored input (undefined if none)
};

struct OpResult {
  Tensor out;
  std::vector<Tensor> grads;
};

// Path of the reference file: $FORGE_OPS_REFERENCE.
std::string reference_path();
std::vector<OpCase> load_op_cases(const std::string& path);
// Runs the case's op on `device`, backward with the case's upstream gradient.
OpResult run_case(const OpCase& c, Device device);
// Elementwise |got - want| <= rtol * (|want| + 0.1 * max|want|); on failure returns a description.
std::string compare(const Tensor& got, const Tensor& want, double rtol);
double default_rtol(const OpCase& c);

}  // namespace forge::test
