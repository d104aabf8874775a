// Stand-in for builds without CUDA/NCCL: the NCCL communicator cannot be made.
#include "core/error.h"
#include "parallel/comm_nccl.h"

namespace forge::parallel {

bool nccl_built() { return false; }
std::unique_ptr<Communicator> nccl_communicator(Communicator&, int, const std::string&) {
  throw Error("this forge was built without NCCL (it needs the CUDA toolkit with NCCL at build time); "
              "use the MPI backend for host tensors");
}

}  // namespace forge::parallel
