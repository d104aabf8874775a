// The simulated CUDA device (see sim.h): tagged memory, checked copies, and the kernels whose CPU
// twins take other arguments.
#include "kernels/sim/sim.h"

#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/paged_attention.h"

namespace forge::sim {
namespace {
constexpr int kMaxDevices = 8;
constexpr uintptr_t kTag = uintptr_t(1) << 55;  // no user-space address has it: dereferencing faults
constexpr int kDeviceShift = 52;
constexpr uintptr_t kAddressMask = (uintptr_t(1) << kDeviceShift) - 1;

std::mutex g_mu;
std::unordered_map<uintptr_t, size_t> g_sizes;  // tagged address -> bytes
size_t g_in_use[kMaxDevices] = {}, g_peak[kMaxDevices] = {};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("simulated CUDA: " + what); }

void on_segfault(int) {
  static const char msg[] =
      "\nforge: segmentation fault while CUDA is simulated (FORGE_SIMULATE_CUDA): most likely host code read or "
      "wrote a CUDA tensor's memory directly, which a GPU would not allow either; copy it to the CPU first. "
      "Backtrace:\n";
  (void)!write(2, msg, sizeof msg - 1);
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
  // SA_RESETHAND restored the default action: returning re-runs the access and ends the process.
}

int read_device_count() {
  const char* v = std::getenv("FORGE_SIMULATE_CUDA");
  if (!v || !*v || std::strcmp(v, "0") == 0) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || n < 1 || n > kMaxDevices)
    throw std::runtime_error(std::string("FORGE_SIMULATE_CUDA=") + v + ": expected a device count from 1 to " +
                             std::to_string(kMaxDevices));
  struct sigaction sa {};
  sa.sa_handler = on_segfault;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
  return int(n);
}

uintptr_t bits(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// Host memory as a host address; rejects device memory (a copy in the wrong direction).
const void* host_only(const void* p, const char* what) {
  if (is_device_address(p)) fail(std::string(what) + " was given device memory where host memory belongs");
  return p;
}
}  // namespace

int device_count() {
  static const int n = read_device_count();
  return n;
}

std::string status() {
  std::string s;
  for (int i = 0; i < device_count(); ++i) s += (i ? ", cuda:" : "cuda:") + std::to_string(i) + " simulated";
  return s + " (FORGE_SIMULATE_CUDA: CPU kernels behind the CUDA interface)";
}

void check_device(int device) {
  if (device < 0 || device >= device_count())
    fail("cuda:" + std::to_string(device) + " requested, but " + std::to_string(device_count()) +
         " simulated device(s) exist (FORGE_SIMULATE_CUDA=" + std::to_string(device_count()) + ")");
}

namespace {
size_t memory_limit() {
  static const size_t limit = [] {
    // Default: a quarter of the host's memory, at most 8 GiB: the simulated memory is real host
    // memory, and servers size their KV cache from it.
    const long long host_mb = (long long)(sysconf(_SC_PHYS_PAGES) / 1024) * (sysconf(_SC_PAGE_SIZE) / 1024);
    const char* v = std::getenv("FORGE_SIMULATE_CUDA_MEMORY_MB");
    const long long mb = v && *v ? std::atoll(v) : std::min(8192LL, host_mb / 4);
    if (mb <= 0) throw std::runtime_error(std::string("FORGE_SIMULATE_CUDA_MEMORY_MB=") + v + ": expected a positive size in MiB");
    return size_t(mb) << 20;
  }();
  return limit;
}
}  // namespace

void memory_info(int device, size_t* free_bytes, size_t* total_bytes) {
  check_device(device);
  std::lock_guard<std::mutex> lock(g_mu);
  *total_bytes = memory_limit();
  *free_bytes = memory_limit() - std::min(memory_limit(), g_in_use[device]);
}

void* alloc(size_t nbytes, int device) {
  check_device(device);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_in_use[device] + nbytes > memory_limit())
      fail("cuda:" + std::to_string(device) + ": out of memory allocating " + std::to_string(nbytes >> 20) +
           " MiB (" + std::to_string(g_in_use[device] >> 20) + " MiB in use of " +
           std::to_string(memory_limit() >> 20) + " MiB, FORGE_SIMULATE_CUDA_MEMORY_MB)");
  }
  void* p = nullptr;
  if (posix_memalign(&p, 256, nbytes ? nbytes : 1) != 0) fail("out of memory allocating " + std::to_string(nbytes) + " bytes");
  // NaN in every float type, so reading memory never written shows; the largest blocks (a server's
  // KV cache) are left to the OS's lazy zero pages instead of being made resident up front.
  if (nbytes <= (size_t(64) << 20)) std::memset(p, 0xff, nbytes);
  const uintptr_t tagged = bits(p) | kTag | (uintptr_t(device) << kDeviceShift);
  std::lock_guard<std::mutex> lock(g_mu);
  g_sizes[tagged] = nbytes;
  g_in_use[device] += nbytes;
  if (g_in_use[device] > g_peak[device]) g_peak[device] = g_in_use[device];
  return reinterpret_cast<void*>(tagged);
}

void release(void* p, int device) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_sizes.find(bits(p));
    if (it == g_sizes.end()) fail("release of memory that was not allocated on a simulated device");
    g_in_use[device] -= it->second;
    g_sizes.erase(it);
  }
  std::free(host_address(p, device));
}

size_t bytes_in_use(int device) {
  check_device(device);
  std::lock_guard<std::mutex> lock(g_mu);
  return g_in_use[device];
}

size_t bytes_peak(int device) {
  check_device(device);
  std::lock_guard<std::mutex> lock(g_mu);
  return g_peak[device];
}

bool is_device_address(const void* p) { return (bits(p) & kTag) != 0; }

void* host_address(const void* p, int device) {
  if (!p) return nullptr;
  if (!is_device_address(p)) {
    if (bits(p) < 4096) return const_cast<void*>(p);  // an empty tensor's view of no storage
    fail("a kernel on cuda:" + std::to_string(device) + " was given host memory where it needs device memory");
  }
  const int owner = int((bits(p) >> kDeviceShift) & (kMaxDevices - 1));
  if (owner != device)
    fail("a kernel on cuda:" + std::to_string(device) + " was given memory of cuda:" + std::to_string(owner));
  return reinterpret_cast<void*>(bits(p) & kAddressMask);
}

void copy_h2d(void* dst, const void* src, size_t n, int device) {
  std::memcpy(host_address(dst, device), host_only(src, "copy_h2d"), n);
}
void copy_d2h(void* dst, const void* src, size_t n, int device) {
  std::memcpy(const_cast<void*>(host_only(dst, "copy_d2h")), host_address(src, device), n);
}
void copy_d2d(void* dst, const void* src, size_t n, int device) {
  std::memcpy(host_address(dst, device), host_address(src, device), n);
}

// ---- kernels with their own argument order ----------------------------------------------------
namespace {
float load(DType dt, const void* p, int64_t i) {
  return dispatch_float(dt, [&](auto t) { return load_f32(static_cast<const decltype(t)*>(p) + i); });
}
void store(DType dt, void* p, int64_t i, float v) {
  dispatch_float(dt, [&](auto t) { store_f32(static_cast<decltype(t)*>(p) + i, v); });
}
size_t float_size(DType dt) {
  return dispatch_float(dt, [](auto t) { return sizeof t; });
}
// op(X) of a stored matrix as a dense f32 [rows, cols] copy (f16 operands: the CPU has no f16 GEMM).
std::vector<float> dense_f32(DType dt, const void* X, bool trans, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[size_t(r * cols + c)] = load(dt, X, trans ? c * ld + r : r * ld + c);
  return out;
}
}  // namespace

void gemm(DType dt, DType c_dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
          int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, float beta, void* C,
          int64_t ldc, int64_t stride_c, int64_t batch) {
  const int64_t es = int64_t(float_size(dt)), cs = int64_t(float_size(c_dt));
  for (int64_t b = 0; b < batch; ++b) {
    const char* a = static_cast<const char*>(A) + b * stride_a * es;
    const char* bb = static_cast<const char*>(B) + b * stride_b * es;
    char* c = static_cast<char*>(C) + b * stride_c * cs;
    // C accumulates in f32 (as cuBLASLt does), rounded once into c_dt.
    std::vector<float> acc;
    float* c32 = reinterpret_cast<float*>(c);
    int64_t ldc32 = ldc;
    if (c_dt != DType::F32) {
      acc.assign(size_t(M * N), 0.0f);
      if (beta != 0.0f)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) acc[size_t(i * N + j)] = load(c_dt, c, i * ldc + j);
      c32 = acc.data();
      ldc32 = N;
    }
    if (dt == DType::F32) {
      cpu::gemm_f32(ta, tb, M, N, K, alpha, reinterpret_cast<const float*>(a), lda,
                    reinterpret_cast<const float*>(bb), ldb, beta, c32, ldc32);
    } else if (dt == DType::BF16) {
      cpu::gemm_bf16(ta, tb, M, N, K, alpha, reinterpret_cast<const bf16*>(a), lda, reinterpret_cast<const bf16*>(bb),
                     ldb, beta, c32, ldc32);
    } else {
      const std::vector<float> a32 = dense_f32(dt, a, ta, M, K, lda), b32 = dense_f32(dt, bb, tb, K, N, ldb);
      cpu::gemm_f32(false, false, M, N, K, alpha, a32.data(), K, b32.data(), N, beta, c32, ldc32);
    }
    if (c_dt != DType::F32)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) store(c_dt, c, i * ldc + j, acc[size_t(i * N + j)]);
  }
}

void paged_attention(DType dt, int64_t N, const cpu::PagedAttnShape& s, const float* q, const void* k_cache,
                     const void* v_cache, const int32_t* block_tables, const int32_t* query_start,
                     const int32_t* context_lens, float* out) {
  if (N == 0) return;
  if (query_start[s.num_seqs] != N) fail("paged attention: query_start ends at " + std::to_string(query_start[s.num_seqs]) + ", not at " +
                                             std::to_string(N) + " rows");
  cpu::paged_attention(s, q, k_cache, v_cache, dt, block_tables, query_start, context_lens, out);
}

void paged_kv_write(DType dt, int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache) {
  cpu::paged_kv_write(N, Hkv, D, block_size, k, v, slots, k_cache, v_cache, dt);
}

}  // namespace forge::sim
