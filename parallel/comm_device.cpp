// Device-aware groups (see comm_device.h).
#include "parallel/comm_device.h"

#include <chrono>
#include <functional>
#include <thread>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/sim/sim.h"
#include "parallel/comm_nccl.h"

namespace forge::parallel {
namespace {

// The simulated GPU's collectives: the same MPI calls on host views of device memory (the sim's
// device memory is host memory under tagged addresses), as NCCL moves device memory without a
// host copy. The views last for the call; MPI keeps only the addresses, which the caller keeps alive.
class SimDeviceCommunicator : public Communicator {
 public:
  SimDeviceCommunicator(Communicator& host, int device) : host_(host), device_(device) {
    name_ = host.name();
    world_ranks_ = host.world_ranks();
  }
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) override {
    Tensor v = view(t, "all_reduce");
    return host_.all_reduce_async(v, op);
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    Tensor o = view(out, "reduce_scatter");
    return host_.reduce_scatter_async(view(in, "reduce_scatter"), o, counts);
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    Tensor o = view(out, "all_gather");
    return host_.all_gather_async(view(in, "all_gather"), o, counts);
  }
  std::unique_ptr<Work> send_async(const Tensor& t, int dst, int tag) override {
    return host_.send_async(view(t, "send"), dst, tag);
  }
  std::unique_ptr<Work> recv_async(Tensor& t, int src, int tag) override {
    Tensor v = view(t, "recv");
    return host_.recv_async(v, src, tag);
  }
  void broadcast(Tensor& t, int root) override {
    Tensor v = view(t, "broadcast");
    host_.broadcast(v, root);
  }
  void barrier() override { host_.barrier(); }
  std::unique_ptr<Communicator> split(int, int, const std::string&) override {
    throw Error("internal: a device half is split through its device_group");
  }

 protected:
  void reduce_doubles(double* v, int n, ReduceOp op) override {
    const std::vector<double> r = host_.reduce(std::vector<double>(v, v + n), op);
    std::copy(r.begin(), r.end(), v);
  }

 private:
  // The device tensor's memory as a host tensor (the same bytes, no copy).
  Tensor view(const Tensor& t, const char* what) const {
    FORGE_CHECK(t.device() == Device::cuda(device_), what, ": the ", name_, " group's device half carries tensors of cuda:",
                device_, ", got one on ", t.device().str());
    FORGE_CHECK(t.is_contiguous(), what, ": the tensor must be contiguous");
    void* p = sim::host_address(t.raw_data(), device_);
    auto storage = Storage::wrap(p, t.nbytes(), Device::cpu(), t.impl()->storage->data);
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = storage;
    impl->shape = t.shape();
    impl->strides = contiguous_strides(t.shape());
    impl->dtype = t.dtype();
    return Tensor(impl);
  }
  Communicator& host_;
  int device_;
};

// A device collective under the host group's deadline and arrival bookkeeping: on a timeout the
// device backend is aborted and the group's first rank names the ranks that never arrived, as MPI's
// own collectives do (comm_mpi.cpp).
class TrackedWork : public Work {
 public:
  TrackedWork(std::unique_ptr<Work> inner, Communicator& host, Communicator& dev, int token, std::string what)
      : inner_(std::move(inner)), host_(host), dev_(dev), token_(token), what_(std::move(what)) {}
  bool test() override {
    if (!done_ && inner_->test()) {
      done_ = true;
      host_.arrived(token_);
    }
    return done_;
  }
  void wait() override {
    // The first rank waits the timeout, the others a little longer, so its error is the one seen.
    const double limit = timeout() <= 0 ? 0 : timeout() + (host_.rank() == 0 ? 0 : 2 + timeout() / 10);
    const auto start = std::chrono::steady_clock::now();
    for (int spin = 0; !test(); ++spin) {
      if (spin < 200) continue;
      std::this_thread::sleep_for(std::chrono::microseconds(spin < 1000 ? 20 : 200));
      if (limit > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > limit) {
        dev_.abort();
        host_.stalled(what_, token_);
      }
    }
  }

 private:
  std::unique_ptr<Work> inner_;
  Communicator &host_, &dev_;
  int token_;
  std::string what_;
  bool done_ = false;
};

// Host traffic over MPI, device tensors over the device half.
class DeviceGroup : public Communicator {
 public:
  DeviceGroup(std::unique_ptr<Communicator> host, int device)
      : host_(std::move(host)), device_(device), tracked_(!cuda::simulated()) {
    name_ = host_->name();
    world_ranks_ = host_->world_ranks();
    // The simulated half runs MPI's own collectives, which keep their own bookkeeping.
    if (cuda::simulated()) dev_ = std::make_unique<SimDeviceCommunicator>(*host_, device);
    else dev_ = nccl_communicator(*host_, device, name_);  // the unique id travels over MPI
  }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) override {
    if (on(t, t) == host_.get()) return host_->all_reduce_async(t, op);
    return collective("all_reduce", [&] { return dev_->all_reduce_async(t, op); });
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    if (on(in, out) == host_.get()) return host_->reduce_scatter_async(in, out, counts);
    return collective("reduce_scatter", [&] { return dev_->reduce_scatter_async(in, out, counts); });
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    if (on(in, out) == host_.get()) return host_->all_gather_async(in, out, counts);
    return collective("all_gather", [&] { return dev_->all_gather_async(in, out, counts); });
  }
  std::unique_ptr<Work> send_async(const Tensor& t, int dst, int tag) override { return on(t, t)->send_async(t, dst, tag); }
  std::unique_ptr<Work> recv_async(Tensor& t, int src, int tag) override { return on(t, t)->recv_async(t, src, tag); }
  void broadcast(Tensor& t, int root) override { on(t, t)->broadcast(t, root); }
  void barrier() override { host_->barrier(); }
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override {
    return device_group(host_->split(color, key, name), device_);
  }

 protected:
  void reduce_doubles(double* v, int n, ReduceOp op) override {
    const std::vector<double> r = host_->reduce(std::vector<double>(v, v + n), op);
    std::copy(r.begin(), r.end(), v);
  }

 private:
  // The backend for a call's tensors: both on the host or both on this rank's device.
  Communicator* on(const Tensor& a, const Tensor& b) {
    FORGE_CHECK(a.device() == b.device(), name_, " group: a collective's input is on ", a.device().str(),
                " and its output on ", b.device().str());
    return a.device().is_cpu() ? host_.get() : dev_.get();
  }
  std::unique_ptr<Work> collective(const char* what, const std::function<std::unique_ptr<Work>()>& launch) {
    if (!tracked_) return launch();
    const int token = host_->arrive();
    return std::make_unique<TrackedWork>(launch(), *host_, *dev_, token, what);
  }
  std::unique_ptr<Communicator> host_, dev_;
  int device_;
  bool tracked_;
};
}  // namespace

std::unique_ptr<Communicator> device_group(std::unique_ptr<Communicator> host, int device) {
  return std::make_unique<DeviceGroup>(std::move(host), device);
}

}  // namespace forge::parallel
