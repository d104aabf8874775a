// Where a tensor lives: the CPU or CUDA device n.
#pragma once
#include <cstdint>
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

// A user's choice - "auto", "cpu", "cuda" or "cuda:N" - made concrete on this machine. auto is
// cuda when a CUDA device is present, else cpu; cuda is cuda:<local rank> in a process started by
// a launcher (launcher_local_rank), else cuda:0. Asked for a device this machine lacks, it throws
// naming `what` (the key or flag it came from), the choice and what is missing: the driver, the
// device, enough devices for the index or for the processes on this node.
Device resolve_device(const std::string& choice, const std::string& what);
// This process's rank among the processes of its job on this node: OMPI_COMM_WORLD_LOCAL_RANK
// (mpirun), SLURM_LOCALID (srun), LOCAL_RANK (torchrun-style launchers); -1 when none is set.
int launcher_local_rank();

}  // namespace forge
