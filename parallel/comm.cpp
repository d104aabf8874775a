// The distributed context (world, timeout, step) and the one-rank communicator used when no MPI
// launcher started the process.
#include "parallel/comm.h"

#include <cstdlib>

#include "core/error.h"
#include "parallel/comm_mpi.h"

namespace forge::parallel {
namespace {
double g_timeout = 600;
int64_t g_step = 0;

// A group of one: collectives are copies, point-to-point has no peer.
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(std::string name) {
    name_ = std::move(name);
    world_ranks_ = {0};
  }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::unique_ptr<Work> all_reduce_async(Tensor&, ReduceOp) override { return done(); }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, const std::vector<int64_t>&) override {
    if (in.raw_data() != out.raw_data()) out.copy_(in.view(out.shape()));
    return done();
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out, const std::vector<int64_t>&) override {
    if (in.raw_data() != out.raw_data()) out.copy_(in.view(out.shape()));
    return done();
  }
  std::unique_ptr<Work> send_async(const Tensor&, int dst, int) override { throw Error(no_peer(dst)); }
  std::unique_ptr<Work> recv_async(Tensor&, int src, int) override { throw Error(no_peer(src)); }
  void broadcast(Tensor&, int) override {}
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int, const std::string& name) override {
    return std::make_unique<LocalCommunicator>(name);
  }

 protected:
  void reduce_doubles(double*, int, ReduceOp) override {}

 private:
  struct Done : Work {
    bool test() override { return true; }
    void wait() override {}
  };
  static std::unique_ptr<Work> done() { return std::make_unique<Done>(); }
  std::string no_peer(int r) const {
    return "the " + name_ + " group has one rank: there is no rank " + std::to_string(r) + " to talk to";
  }
};
}  // namespace

void Communicator::stalled(const std::string& what, int) {
  throw Error(what + " on the " + name_ + " group at step " + std::to_string(current_step()) + " did not finish within " +
              std::to_string(int(timeout())) + " s (a rank stalled or died)");
}

std::vector<double> Communicator::reduce(std::vector<double> v, ReduceOp op) {
  reduce_doubles(v.data(), int(v.size()), op);
  return v;
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

Communicator& world() {
  static std::unique_ptr<Communicator> w = launched_by_mpi() ? mpi_world() : std::make_unique<LocalCommunicator>("world");
  return *w;
}

void set_timeout(double seconds) { g_timeout = seconds; }
double timeout() { return g_timeout; }
void set_step(int64_t step) { g_step = step; }
int64_t current_step() { return g_step; }

}  // namespace forge::parallel
