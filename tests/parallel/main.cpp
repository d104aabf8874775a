// The suite's main: MPI is finalised after the tests so mpirun sees a clean exit on every rank.
#include <gtest/gtest.h>

#include "parallel/comm.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  forge::parallel::world();  // MPI starts before any test (under mpirun)
  const int rc = RUN_ALL_TESTS();
  forge::parallel::finalize();
  return rc;
}
