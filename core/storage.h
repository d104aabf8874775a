// A reference-counted block of memory on one device. Views share it.
#pragma once
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace forge {

struct Storage {
  std::shared_ptr<void> data;  // deleter returns the memory to its allocator
  size_t nbytes = 0;
  Device device;

  // 64-byte aligned CPU memory (core/cpu_allocator.h), or memory from the CUDA caching allocator.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
  // Wraps memory someone else owns (a memory-mapped file); `owner` keeps it alive.
  static std::shared_ptr<Storage> wrap(void* ptr, size_t nbytes, Device device, std::shared_ptr<void> owner);
};

// Bytes of CPU tensor memory currently allocated and the peak since the last reset (tensors
// only: blocks the CPU allocator keeps for reuse are not counted).
size_t cpu_bytes_in_use();
size_t cpu_bytes_peak();
void reset_cpu_bytes_peak();

}  // namespace forge
