// The NCCL backend of Communicator: collectives on device tensors, enqueued on the device's
// stream. The NCCL unique id travels over a bootstrap group (MPI, or the one-rank local world).
// Built when CUDA and NCCL are found; otherwise the functions say so.
#pragma once
#include <memory>
#include <string>

#include "parallel/comm.h"

namespace forge::parallel {

bool nccl_built();
// One NCCL communicator over the members of `bootstrap`, this rank on CUDA device `device`.
std::unique_ptr<Communicator> nccl_communicator(Communicator& bootstrap, int device, const std::string& name);

}  // namespace forge::parallel
