// The device mesh dp x tp x pp over the world's ranks, and a communicator per dimension.
// Rank layout (Megatron's order, tensor parallel fastest so a TP group shares a node):
//   world rank = (pp_rank * dp + dp_rank) * tp + tp_rank
#pragma once
#include <memory>
#include <string>

#include "parallel/comm.h"

namespace forge::parallel {

struct MeshShape {
  int dp = 1, tp = 1, pp = 1;
  int size() const { return dp * tp * pp; }
  std::string str() const;  // "dp2 x tp1 x pp1"
};

class Mesh {
 public:
  // Throws when dp * tp * pp differs from the world's size, saying how to launch. On a CUDA
  // device the dp, tp and pp groups carry device tensors over NCCL (parallel/comm_device.h).
  Mesh(Communicator& world, MeshShape shape, Device device = Device::cpu());
  const MeshShape& shape() const { return shape_; }
  int dp_rank() const { return dp_rank_; }
  int tp_rank() const { return tp_rank_; }
  int pp_rank() const { return pp_rank_; }
  Communicator& world() const { return world_; }
  Communicator& dp() const { return *dp_; }  // same tp and pp rank
  Communicator& tp() const { return *tp_; }  // same dp and pp rank
  Communicator& pp() const { return *pp_; }  // same dp and tp rank
  Communicator& model() const { return *model_; }  // same dp rank: the tp x pp ranks holding one model
  // The world rank at mesh coordinates.
  int rank_of(int dp_rank, int tp_rank, int pp_rank) const;

 private:
  Communicator& world_;
  MeshShape shape_;
  int dp_rank_ = 0, tp_rank_ = 0, pp_rank_ = 0;
  std::unique_ptr<Communicator> dp_, tp_, pp_, model_;
};

}  // namespace forge::parallel
