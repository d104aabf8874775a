// Device names and the choice of a device for a command (see device.h).
#include "core/device.h"

#include <cstdlib>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  const std::string digits = s.rfind("cuda:", 0) == 0 ? s.substr(5) : "";
  if (!digits.empty() && digits.size() <= 3 && digits.find_first_not_of("0123456789") == std::string::npos)
    return cuda(std::stoi(digits));
  throw Error("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
}

int launcher_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return -1;
}

Device resolve_device(const std::string& choice, const std::string& what) {
  const std::string asked = what + "=" + choice;
  if (choice == "cpu") return Device::cpu();
  if (choice == "auto" && !cuda::available()) return Device::cpu();
  const int local = launcher_local_rank();
  Device d;
  try {
    d = choice == "auto" || choice == "cuda" ? Device::cuda(local >= 0 ? local : 0) : Device::parse(choice);
  } catch (const Error& e) {
    throw Error(asked + ": " + e.what() + "; or auto");
  }
  if (!cuda::available()) throw Error(asked + ": no CUDA device to run on: " + cuda::status());
  const int n = cuda::device_count();
  if (d.index < n) return d;
  std::string msg = asked + ": this machine has " + std::to_string(n) + " CUDA device(s), so cuda:" +
                    std::to_string(d.index) + " does not exist";
  if (choice == "auto" || choice == "cuda")
    msg += " (this process is local rank " + std::to_string(local) +
           " of its launcher: start at most one process per GPU on a node, e.g. parallel.dp x tp x pp <= " +
           std::to_string(n) + " per node)";
  throw Error(msg);
}

}  // namespace forge
