// What the device path costs the host: copies between host and device memory (counted by
// kernels/cuda/dispatch.cpp for real and simulated GPUs) and ops that ran on host copies for want
// of a CUDA kernel. Tests hold a training or decode step on a device to a budget of both.
#pragma once
#include <cstdint>
#include <string>

namespace forge {

struct DeviceStats {
  int64_t h2d = 0, d2h = 0, d2d = 0;      // copies
  int64_t h2d_bytes = 0, d2h_bytes = 0;
  int64_t host_fallbacks = 0;             // ops run on host copies
  DeviceStats operator-(const DeviceStats& o) const;
  DeviceStats operator+(const DeviceStats& o) const;
  std::string str() const;                // "3 h2d (1.2 KiB), 1 d2h (4 B), 0 host fallbacks"
};

DeviceStats device_stats();  // since the start of the process

}  // namespace forge
