// The simulated CUDA device. FORGE_SIMULATE_CUDA=N (N >= 1) gives N devices that serve the whole
// forge::cuda interface (kernels/cuda/dispatch.cpp), so tests run every caller's CUDA path -
// device placement, copies, kernel dispatch, collectives - on a machine without a GPU:
//   - device memory is host memory handed out under a tagged address (bit 55 set, the device in
//     bits 52-54): outside the user address space, so host code that reads or writes a device
//     tensor's data faults at once, as it would with a GPU (a SIGSEGV handler says so);
//   - kernels are the CPU kernels, run by launch() on the untagged addresses; a kernel given host
//     memory where the GPU needs device memory, or another device's memory, is an error;
//   - fresh device memory (blocks up to 64 MiB) is filled with NaN bytes, so reading memory never
//     written shows.
// Results equal the CPU's (the same kernels); only placement and copies are simulated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/types.h"

namespace forge::sim {

int device_count();  // N of FORGE_SIMULATE_CUDA, 0 when unset
std::string status();
void check_device(int device);  // throws naming the device count when out of range

void* alloc(size_t nbytes, int device);
void release(void* p, int device);
size_t bytes_in_use(int device);
size_t bytes_peak(int device);
// The simulated memory: FORGE_SIMULATE_CUDA_MEMORY_MB per device (default a quarter of the host's
// memory, at most 8 GiB: it is host memory); allocating past it fails as a GPU's allocator does.
void memory_info(int device, size_t* free_bytes, size_t* total_bytes);

bool is_device_address(const void* p);
// Where device memory of `device` really is (nullptr stays nullptr): for the simulated kernels
// and collectives only. Throws for host memory and for another device's memory.
void* host_address(const void* p, int device);
// Copies that check their direction as cudaMemcpy does: h2d from host to device memory, and so on.
void copy_h2d(void* dst, const void* src, size_t n, int device);
void copy_d2h(void* dst, const void* src, size_t n, int device);
void copy_d2d(void* dst, const void* src, size_t n, int device);

// ---- running CPU kernels on device memory ---------------------------------------------------
namespace detail {
template <class T>
T arg(int, T v) {  // sizes, flags, enums, strides, dtypes
  return v;
}
// The one ambiguous pointer type: shapes and strides (host arrays) or ids and positions (device).
inline const int64_t* arg(int device, const int64_t* p) {
  return is_device_address(p) ? static_cast<const int64_t*>(host_address(p, device)) : p;
}
template <class T>
T* arg(int device, T* p) {  // every other pointer is device memory
  return static_cast<T*>(host_address(p, device));
}
inline cpu::AttnShape arg(int device, const cpu::AttnShape& s) {
  cpu::AttnShape c = s;
  c.doc = arg(device, s.doc);
  return c;
}
}  // namespace detail

// fn(args...) with device addresses made host addresses: a CPU kernel run as the device's kernel.
template <class Fn, class... A>
decltype(auto) launch(int device, Fn&& fn, A... args) {
  check_device(device);
  return fn(detail::arg(device, args)...);
}

// The kernels whose CPU twins take their arguments differently (contracts: cuda_backend.h).
void gemm(DType dt, DType c_dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, float beta,
          void* C, int64_t ldc, int64_t stride_c, int64_t batch);
void paged_attention(DType dt, int64_t N, const cpu::PagedAttnShape& s, const float* q, const void* k_cache,
                     const void* v_cache, const int32_t* block_tables, const int32_t* query_start,
                     const int32_t* context_lens, float* out);
void paged_kv_write(DType dt, int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache);

}  // namespace forge::sim
