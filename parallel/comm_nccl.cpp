// NCCL communicator (see comm_nccl.h). Work is a CUDA event recorded after the collective; waits
// poll it against the deadline and NCCL's asynchronous error, and a communicator that times out
// or fails is aborted (ncclCommAbort) so no kernel is left spinning on the device. Collectives run
// on the device's compute stream; sends and receives each on a stream of their own (ordered
// after the compute stream's work so far), so a pipeline stage's send waiting for its peer never
// holds up the receive the peer is waiting for (1F1B's crossing messages would deadlock on one
// stream).
#include "parallel/comm_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge::parallel {
namespace {
using Clock = std::chrono::steady_clock;

void check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess && rc != ncclInProgress) throw Error(std::string("NCCL ") + what + " failed: " + ncclGetErrorString(rc));
}
void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw Error(std::string("CUDA ") + what + " failed: " + cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(const Tensor& t, const char* what) {
  FORGE_CHECK(!t.device().is_cpu(), what, ": the NCCL backend carries device tensors (use MPI for host tensors)");
  FORGE_CHECK(t.is_contiguous(), what, ": the tensor must be contiguous");
  switch (t.dtype()) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::U8: return ncclUint8;
  }
  throw Error(std::string(what) + ": unsupported dtype");
}
ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : op == ReduceOp::Max ? ncclMax : ncclMin; }

class NcclCommunicator;

class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator* c, std::string what, cudaStream_t on = nullptr);  // on: the compute stream
  ~NcclWork() override { cudaEventDestroy(ev_); }
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator* c_;
  std::string what_;
  cudaEvent_t ev_{};
  bool done_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int device, std::string name, std::vector<int> world_ranks)
      : comm_(comm), device_(device) {
    name_ = std::move(name);
    world_ranks_ = std::move(world_ranks);
    check(ncclCommUserRank(comm_, &rank_), "CommUserRank");
    check(ncclCommCount(comm_, &size_), "CommCount");
    stream_ = static_cast<cudaStream_t>(cuda::stream(device));
    check(cudaStreamCreateWithFlags(&send_stream_, cudaStreamNonBlocking), "StreamCreate");
    check(cudaStreamCreateWithFlags(&recv_stream_, cudaStreamNonBlocking), "StreamCreate");
    check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "EventCreate");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
    cudaEventDestroy(ready_);
    cudaStreamDestroy(send_stream_);
    cudaStreamDestroy(recv_stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }

  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) override {
    check(ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t, "all_reduce"), nccl_op(op), comm_,
                        stream_),
          "AllReduce");
    return std::make_unique<NcclWork>(this, "all_reduce");
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    const ncclDataType_t ty = nccl_type(in, "reduce_scatter");
    const size_t es = dtype_size(in.dtype());
    // Uneven parts: one reduce per destination rank in a group (NCCL's ReduceScatter needs equal ones).
    check(ncclGroupStart(), "GroupStart");
    size_t off = 0;
    for (int r = 0; r < size_; ++r) {
      const auto* src = static_cast<const char*>(in.raw_data()) + off * es;
      check(ncclReduce(src, r == rank_ ? out.raw_data() : nullptr, size_t(counts[size_t(r)]), ty, ncclSum, r, comm_,
                       stream_),
            "Reduce");
      off += size_t(counts[size_t(r)]);
    }
    check(ncclGroupEnd(), "GroupEnd");
    return std::make_unique<NcclWork>(this, "reduce_scatter");
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    const ncclDataType_t ty = nccl_type(out, "all_gather");
    const size_t es = dtype_size(out.dtype());
    check(ncclGroupStart(), "GroupStart");
    size_t off = 0;
    for (int r = 0; r < size_; ++r) {
      auto* dst = static_cast<char*>(out.raw_data()) + off * es;
      check(ncclBroadcast(r == rank_ ? in.raw_data() : dst, dst, size_t(counts[size_t(r)]), ty, r, comm_, stream_),
            "Broadcast");
      off += size_t(counts[size_t(r)]);
    }
    check(ncclGroupEnd(), "GroupEnd");
    return std::make_unique<NcclWork>(this, "all_gather");
  }
  std::unique_ptr<Work> send_async(const Tensor& t, int dst, int) override {
    const ncclDataType_t ty = nccl_type(t, "send");
    after_compute(send_stream_);  // the data is written by the compute stream's work so far
    check(ncclSend(t.raw_data(), size_t(t.numel()), ty, dst, comm_, send_stream_), "Send");
    return std::make_unique<NcclWork>(this, "send to rank " + std::to_string(world_ranks_.at(size_t(dst))), send_stream_);
  }
  std::unique_ptr<Work> recv_async(Tensor& t, int src, int) override {
    const ncclDataType_t ty = nccl_type(t, "recv");
    after_compute(recv_stream_);  // the buffer was allocated on the compute stream
    check(ncclRecv(t.raw_data(), size_t(t.numel()), ty, src, comm_, recv_stream_), "Recv");
    return std::make_unique<NcclWork>(this, "recv from rank " + std::to_string(world_ranks_.at(size_t(src))), recv_stream_);
  }
  void broadcast(Tensor& t, int root) override {
    check(ncclBroadcast(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t, "broadcast"), root, comm_, stream_),
          "Broadcast");
    NcclWork(this, "broadcast").wait();
  }
  void barrier() override {
    Tensor one = Tensor::ones({1}, DType::F32, Device::cuda(device_));
    all_reduce(one);
  }
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override {
    ncclComm_t c;
    check(ncclCommSplit(comm_, color, key, &c, nullptr), "CommSplit");
    // World ranks of the new group: gather (color, key, world rank) from everyone.
    Tensor mine = Tensor::from_vector(std::vector<int64_t>{color, key, world_ranks_[size_t(rank_)]}, {3}).to(Device::cuda(device_));
    Tensor all = Tensor::empty({3 * int64_t(size_)}, DType::I64, Device::cuda(device_));
    all_gather(mine, all, std::vector<int64_t>(size_t(size_), 3));
    std::vector<int64_t> v = all.to(Device::cpu()).to_vector<int64_t>();
    std::vector<std::pair<int64_t, int>> members;
    for (int r = 0; r < size_; ++r)
      if (v[size_t(3 * r)] == color) members.emplace_back(v[size_t(3 * r + 1)], int(v[size_t(3 * r + 2)]));
    std::stable_sort(members.begin(), members.end(), [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<int> wr;
    for (auto& m : members) wr.push_back(m.second);
    return std::make_unique<NcclCommunicator>(c, device_, name, wr);
  }
  void abort() override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }
  // NCCL's asynchronous error (a peer gone, a network failure): abort and throw naming it.
  void check_async(const std::string& what) {
    if (!comm_) return;
    ncclResult_t err = ncclSuccess;
    ncclCommGetAsyncError(comm_, &err);
    if (err == ncclSuccess || err == ncclInProgress) return;
    abort();
    throw Error("rank " + std::to_string(world_ranks_[size_t(rank_)]) + ": NCCL " + what + " on the " + name_ +
                " group at step " + std::to_string(current_step()) + " failed: " + ncclGetErrorString(err) +
                " (the communicator was aborted)");
  }
  [[noreturn]] void timed_out(const std::string& what) {
    abort();
    throw Error("rank " + std::to_string(world_ranks_[size_t(rank_)]) + ": NCCL " + what + " on the " + name_ +
                " group at step " + std::to_string(current_step()) + " did not finish within " +
                std::to_string(int(timeout())) + " s (a rank stalled or died; the communicator was aborted)");
  }

 protected:
  void reduce_doubles(double* v, int n, ReduceOp op) override {
    void* d = nullptr;
    check(cudaSetDevice(device_), "SetDevice");
    check(cudaMallocAsync(&d, sizeof(double) * size_t(n), stream_), "MallocAsync");
    check(cudaMemcpyAsync(d, v, sizeof(double) * size_t(n), cudaMemcpyHostToDevice, stream_), "MemcpyAsync");
    check(ncclAllReduce(d, d, size_t(n), ncclFloat64, nccl_op(op), comm_, stream_), "AllReduce");
    check(cudaMemcpyAsync(v, d, sizeof(double) * size_t(n), cudaMemcpyDeviceToHost, stream_), "MemcpyAsync");
    check(cudaFreeAsync(d, stream_), "FreeAsync");
    NcclWork(this, "all_reduce").wait();
  }

 private:
  // Makes `s` wait for the work enqueued on the compute stream so far.
  void after_compute(cudaStream_t s) {
    check(cudaEventRecord(ready_, stream_), "EventRecord");
    check(cudaStreamWaitEvent(s, ready_, 0), "StreamWaitEvent");
  }
  ncclComm_t comm_;
  int device_, rank_ = 0, size_ = 1;
  cudaStream_t stream_{}, send_stream_{}, recv_stream_{};
  cudaEvent_t ready_{};
};

NcclWork::NcclWork(NcclCommunicator* c, std::string what, cudaStream_t on) : c_(c), what_(std::move(what)) {
  check(cudaEventCreateWithFlags(&ev_, cudaEventDisableTiming), "EventCreate");
  check(cudaEventRecord(ev_, on ? on : c->stream()), "EventRecord");
}

bool NcclWork::test() {
  if (done_) return true;
  const cudaError_t q = cudaEventQuery(ev_);
  if (q == cudaSuccess) return done_ = true;
  if (q != cudaErrorNotReady) check(q, "EventQuery");
  c_->check_async(what_);
  return false;
}

void NcclWork::wait() {
  const auto start = Clock::now();
  for (int spin = 0; !test(); ++spin) {
    if (spin > 100) std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (timeout() > 0 && std::chrono::duration<double>(Clock::now() - start).count() > timeout()) c_->timed_out(what_);
  }
}
}  // namespace

bool nccl_built() { return true; }

std::unique_ptr<Communicator> nccl_communicator(Communicator& bootstrap, int device, const std::string& name) {
  ncclUniqueId id;
  if (bootstrap.rank() == 0) check(ncclGetUniqueId(&id), "GetUniqueId");
  Tensor idt = Tensor::empty({int64_t(sizeof(id))}, DType::U8);
  std::memcpy(idt.raw_data(), &id, sizeof(id));
  bootstrap.broadcast(idt, 0);
  std::memcpy(&id, idt.raw_data(), sizeof(id));
  check(cudaSetDevice(device), "SetDevice");
  ncclComm_t comm;
  check(ncclCommInitRank(&comm, bootstrap.size(), id, bootstrap.rank()), "CommInitRank");
  return std::make_unique<NcclCommunicator>(comm, device, name, bootstrap.world_ranks());
}

}  // namespace forge::parallel
