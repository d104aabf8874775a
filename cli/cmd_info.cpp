// `forge info`: what this build runs on.
#include <omp.h>

#include <cstdio>

#include "cli/commands.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge::cli {

int cmd_info(const Args& args) {
  check_flags(args, {});
  if (has_flag(args, "--help")) {
    std::printf("usage: forge info\n  prints CPU threads, the GEMM backend and the CUDA devices this build sees\n");
    return 0;
  }
  std::printf("forge 0.1\n");
  std::printf("cpu threads:  %d\n", omp_get_max_threads());
  std::printf("gemm backend: %s (override with FORGE_GEMM)\n", cpu::gemm_backend_name(cpu::gemm_backend()));
  std::printf("cuda:         %s\n", cuda::status().c_str());
  return 0;
}

}  // namespace forge::cli
