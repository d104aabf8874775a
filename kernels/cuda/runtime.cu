// Device discovery, the stream-ordered caching allocator (cudaMallocAsync pools) and copies.
#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kMaxDevices = 16;
std::mutex g_mu;
cudaStream_t g_streams[kMaxDevices] = {};
std::unordered_map<void*, size_t> g_sizes;
size_t g_in_use[kMaxDevices] = {}, g_peak[kMaxDevices] = {};

int probe_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}
}  // namespace

int device_count();

cudaStream_t stream_for(int device) {
  if (device < 0 || device >= device_count())
    throw std::runtime_error("cuda:" + std::to_string(device) + " requested, but this machine has " +
                             (device_count() ? std::to_string(device_count()) + " CUDA device(s)" : status()));
  FORGE_CUDA_CHECK(cudaSetDevice(device));
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_streams[device]) {
    FORGE_CUDA_CHECK(cudaStreamCreateWithFlags(&g_streams[device], cudaStreamNonBlocking));
    // Keep freed blocks in the pool instead of returning them to the driver: a caching allocator.
    cudaMemPool_t pool;
    FORGE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t threshold = UINT64_MAX;
    FORGE_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }
  return g_streams[device];
}

int device_count() {
  static int n = probe_count();
  return n;
}

bool available() { return device_count() > 0; }

std::string status() {
  int n = device_count();
  if (n == 0) {
    int driver = 0;
    cudaDriverGetVersion(&driver);
    cudaGetLastError();
    return driver == 0 ? "no CUDA driver" : "no CUDA device";
  }
  std::string s;
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
      s += (i ? ", " : "") + std::string("cuda:") + std::to_string(i) + " " + p.name;
  }
  return s;
}

void memory_info(int device, size_t* free_bytes, size_t* total_bytes) {
  stream_for(device);  // makes it current
  FORGE_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

void* alloc(size_t nbytes, int device) {
  cudaStream_t s = stream_for(device);
  void* p = nullptr;
  if (cudaMallocAsync(&p, nbytes, s) != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw std::runtime_error("cuda:" + std::to_string(device) + ": out of memory allocating " +
                             std::to_string(nbytes >> 20) + " MiB (Forge holds " +
                             std::to_string(bytes_in_use(device) >> 20) + " MiB; the device has " +
                             std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) + " MiB)");
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_sizes[p] = nbytes;
  g_in_use[device] += nbytes;
  if (g_in_use[device] > g_peak[device]) g_peak[device] = g_in_use[device];
  return p;
}

void release(void* p, int device) {
  cudaStream_t s = stream_for(device);
  cudaFreeAsync(p, s);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_sizes.find(p);
  if (it != g_sizes.end()) {
    g_in_use[device] -= it->second;
    g_sizes.erase(it);
  }
}

size_t bytes_in_use(int device) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_in_use[device];
}
size_t bytes_peak(int device) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_peak[device];
}
size_t bytes_reserved(int device) {
  stream_for(device);
  cudaMemPool_t pool;
  FORGE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t reserved = 0;
  FORGE_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  return size_t(reserved);
}

namespace {
// Host-to-device copies go through a pinned staging ring per device: the caller's bytes are copied
// into it and the DMA is queued on the device's stream without waiting, so the host goes on (to
// the next batch, the next launches) while the copy and the kernels before it run, and the caller
// may free its buffer at once. A region is reused once the event behind its copy has passed.
// Copies larger than half the ring wait for themselves, as before.
constexpr size_t kStagingBytes = size_t(64) << 20;
struct Staging {
  char* base = nullptr;
  size_t head = 0;
  struct InFlight {
    size_t begin, end;
    cudaEvent_t done;
  };
  std::deque<InFlight> inflight;  // oldest first
  std::vector<cudaEvent_t> spare;
  std::mutex mu;
};
Staging g_staging[kMaxDevices];

// [begin, begin + n) of the ring, free to write: waits for the oldest copies still reading it.
size_t stage_region(Staging& st, size_t n) {
  size_t at = st.head + n <= kStagingBytes ? st.head : 0;
  auto overlaps = [&](const Staging::InFlight& f) { return f.begin < at + n && at < f.end; };
  while (std::any_of(st.inflight.begin(), st.inflight.end(), overlaps)) {
    FORGE_CUDA_CHECK(cudaEventSynchronize(st.inflight.front().done));
    st.spare.push_back(st.inflight.front().done);
    st.inflight.pop_front();
  }
  st.head = at + n;
  return at;
}
}  // namespace

void copy_h2d(void* dst, const void* src, size_t n, int device) {
  cudaStream_t s = stream_for(device);
  if (n > kStagingBytes / 2) {
    FORGE_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s));
    FORGE_CUDA_CHECK(cudaStreamSynchronize(s));  // the host buffer may be freed when we return
    return;
  }
  Staging& st = g_staging[device];
  std::lock_guard<std::mutex> lock(st.mu);
  if (!st.base) FORGE_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&st.base), kStagingBytes, cudaHostAllocDefault));
  const size_t at = stage_region(st, (n + 255) / 256 * 256);
  std::memcpy(st.base + at, src, n);
  FORGE_CUDA_CHECK(cudaMemcpyAsync(dst, st.base + at, n, cudaMemcpyHostToDevice, s));
  cudaEvent_t done;
  if (st.spare.empty()) {
    FORGE_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  } else {
    done = st.spare.back();
    st.spare.pop_back();
  }
  FORGE_CUDA_CHECK(cudaEventRecord(done, s));
  st.inflight.push_back({at, at + (n + 255) / 256 * 256, done});
}

void copy_d2h(void* dst, const void* src, size_t n, int device) {
  cudaStream_t s = stream_for(device);
  FORGE_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
  FORGE_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_d2d(void* dst, const void* src, size_t n, int device) {
  FORGE_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_for(device)));
}

void synchronize(int device) { FORGE_CUDA_CHECK(cudaStreamSynchronize(stream_for(device))); }
void* stream(int device) { return stream_for(device); }

}  // namespace forge::cuda::gpu
