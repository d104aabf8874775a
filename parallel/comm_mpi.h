// The MPI backend of Communicator (host tensors), built on OpenMPI's non-blocking collectives so
// every wait can poll against the deadline.
#pragma once
#include <memory>

#include "parallel/comm.h"

namespace forge::parallel {

// MPI_COMM_WORLD (initialising MPI on first use).
std::unique_ptr<Communicator> mpi_world();

}  // namespace forge::parallel
