// Where a tensor lives: the CPU or CUDA device n.
#pragma once
#include <string>

namespace forge {

struct Device {
  enum Type : uint8_t { CPU, CUDA };
  Type type = CPU;
  int index = 0;

  static Device cpu() { return {CPU, 0}; }
  static Device cuda(int i = 0) { return {CUDA, i}; }
  bool is_cpu() const { return type == CPU; }
  bool is_cuda() const { return type == CUDA; }
  bool operator==(const Device& o) const { return type == o.type && (type == CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  static Device parse(const std::string& s);  // "cpu", "cuda", "cuda:1"
};

}  // namespace forge
