// Mesh coordinates and the per-dimension communicators (see mesh.h for the layout).
#include "parallel/mesh.h"

#include "core/error.h"
#include "parallel/comm_device.h"

namespace forge::parallel {

std::string MeshShape::str() const {
  return "dp" + std::to_string(dp) + " x tp" + std::to_string(tp) + " x pp" + std::to_string(pp);
}

Mesh::Mesh(Communicator& world, MeshShape s, Device device) : world_(world), shape_(s) {
  FORGE_CHECK(s.dp >= 1 && s.tp >= 1 && s.pp >= 1, "parallel: dp, tp and pp must be at least 1, got ", s.str());
  FORGE_CHECK(s.size() == world.size(), "parallel: ", s.str(), " = ", s.size(), " ranks, but ", world.size(),
              world.size() == 1 ? " process was" : " processes were", " started (launch with: mpirun -np ", s.size(),
              " forge train ...)");
  const int r = world.rank();
  tp_rank_ = r % s.tp;
  dp_rank_ = (r / s.tp) % s.dp;
  pp_rank_ = r / (s.tp * s.dp);
  // Colors: the coordinates the group shares; keys: the coordinate that varies inside it.
  dp_ = world.split(pp_rank_ * s.tp + tp_rank_, dp_rank_, "dp");
  tp_ = world.split(pp_rank_ * s.dp + dp_rank_, tp_rank_, "tp");
  pp_ = world.split(dp_rank_ * s.tp + tp_rank_, pp_rank_, "pp");
  model_ = world.split(dp_rank_, pp_rank_ * s.tp + tp_rank_, "model");
  // On GPUs the groups take a device half too (NCCL): tensors, and the gradient norm's sums, stay
  // on the devices. One process has nothing to wrap: its groups' collectives are copies.
  if (device.is_cuda() && world.size() > 1) {
    dp_ = device_group(std::move(dp_), device.index);
    tp_ = device_group(std::move(tp_), device.index);
    pp_ = device_group(std::move(pp_), device.index);
    model_ = device_group(std::move(model_), device.index);
  }
}

int Mesh::rank_of(int dp_rank, int tp_rank, int pp_rank) const {
  return (pp_rank * shape_.dp + dp_rank) * shape_.tp + tp_rank;
}

}  // namespace forge::parallel
