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
    std::printf("usage: forge info\n  prints CPU threads, the GEMM backend, the CUDA devices this build sees and the\n"
                "  device each command takes by default (model.device / --device auto)\n");
    return 0;
  }
  std::printf("forge 0.1\n");
  std::printf("cpu threads:  %d\n", omp_get_max_threads());
  std::printf("gemm backend: %s (override with FORGE_GEMM)\n", cpu::gemm_backend_name(cpu::gemm_backend()));
  std::printf("cuda:         %s\n", cuda::status().c_str());
  if (cuda::available()) {
    for (int d = 0; d < cuda::device_count(); ++d) {
      size_t free_b = 0, total_b = 0;
      cuda::memory_info(d, &free_b, &total_b);
      std::printf("  cuda:%d      %.1f GiB free of %.1f GiB\n", d, double(free_b) / (1 << 30), double(total_b) / (1 << 30));
    }
  }
  // What `auto` resolves to here; under a launcher each process takes cuda:<local rank>.
  const Device dev = resolve_device("auto", "--device");
  const int local = launcher_local_rank();
  std::printf("default device: %s%s\n", dev.str().c_str(),
              dev.is_cuda() && local >= 0 ? " (this process's local rank)" : "");
  std::printf("  forge train (model.device auto), serve, generate, eval, bench infer|serve|train (--device auto): %s\n",
              dev.str().c_str());
  std::printf("  forge merge, tokenize, template, data, init-model: cpu\n");
  return 0;
}

}  // namespace forge::cli
