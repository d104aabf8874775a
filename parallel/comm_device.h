// A group's communicator for a run on CUDA devices: tensors on the device travel over the device
// backend - NCCL on GPUs, or on the simulated GPU (FORGE_SIMULATE_CUDA) MPI over the device
// memory's real addresses, with no copy either way - while host tensors, doubles and barriers
// stay on MPI. The trainer's groups take both (a tensor-parallel loss reduces device logits'
// maxima and host-side counts alike), so one communicator routes each call by the tensor's device.
#pragma once
#include <memory>

#include "parallel/comm.h"

namespace forge::parallel {

// `host` is the group's MPI communicator (kept and used for host traffic); `device` the CUDA
// device of this rank. split() splits the host group and gives the new group its device half.
std::unique_ptr<Communicator> device_group(std::unique_ptr<Communicator> host, int device);

}  // namespace forge::parallel
