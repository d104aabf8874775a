// Every op's forward and gradients against PyTorch (tests/reference/ops_reference.py), f32 and bf16.
#include <gtest/gtest.h>

#include <set>

#include "tests/support/op_table.h"

namespace forge::test {
namespace {

class OpTable : public ::testing::TestWithParam<std::string> {};

std::vector<OpCase>& cases() {
  static std::vector<OpCase> c = load_op_cases(reference_path());
  return c;
}

TEST(OpTableFile, HasEveryOpFamily) {
  std::set<std::string> ops;
  for (auto& c : cases()) ops.insert(c.spec["op"]);
  for (const char* op : {"add", "sub", "mul", "div", "pow", "matmul", "linear", "sum", "mean", "max", "exp", "log",
                         "sqrt", "rsqrt", "silu", "gelu", "sigmoid", "softmax", "log_softmax", "cross_entropy",
                         "embedding", "rms_norm", "rope", "attention", "cat", "stack", "split", "where",
                         "masked_fill", "views"})
    EXPECT_TRUE(ops.count(op)) << "no reference case for " << op;
  EXPECT_GE(cases().size(), 70u);
}

TEST(OpTable, MatchesPyTorchOnCpu) {
  int checked = 0;
  for (const OpCase& c : cases()) {
    SCOPED_TRACE(c.name);
    OpResult r = run_case(c, Device::cpu());
    double rtol = default_rtol(c);
    EXPECT_EQ(compare(r.out, c.out, rtol), "") << c.name << ": output";
    for (size_t i = 0; i < c.grads.size(); ++i) {
      if (!c.grads[i].defined()) continue;
      EXPECT_EQ(compare(r.grads[i], c.grads[i], rtol), "") << c.name << ": gradient of input " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 80);
}

}  // namespace
}  // namespace forge::test
