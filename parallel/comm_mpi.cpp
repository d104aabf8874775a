// MPI communicator. Each collective also sends a zero-byte "arrived" message to the group's first
// rank, so when a collective times out that rank can name the members that never reached it.
#include "parallel/comm_mpi.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "core/error.h"

namespace forge::parallel {
namespace {
using Clock = std::chrono::steady_clock;
bool g_mpi = false;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("MPI ") + what + " failed: " + std::string(msg, size_t(len)));
}

// reducing: MPI has no 16-bit float sums, so bf16/f16 tensors only move (send, gather, broadcast).
MPI_Datatype mpi_type(const Tensor& t, const char* what, bool reducing = false) {
  FORGE_CHECK(t.device().is_cpu(), what, ": the MPI backend carries host tensors (use NCCL for device tensors)");
  FORGE_CHECK(t.is_contiguous(), what, ": the tensor must be contiguous");
  switch (t.dtype()) {
    case DType::F32: return MPI_FLOAT;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::U8: return MPI_UINT8_T;
    case DType::BF16:
    case DType::F16:
      if (!reducing) return MPI_UINT16_T;
      [[fallthrough]];
    default:
      throw Error(std::string(what) + ": MPI reduces f32, i32, i64 and u8 tensors, not " + dtype_name(t.dtype()));
  }
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : op == ReduceOp::Max ? MPI_MAX : MPI_MIN; }

std::string join(const std::vector<int>& v) {
  std::string s;
  for (int x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

class MpiCommunicator;

// A request in flight; wait() polls it (spinning briefly, then sleeping so oversubscribed ranks
// leave the cores to the ones that work) until it completes or the deadline passes.
class MpiWork : public Work {
 public:
  MpiWork(MpiCommunicator* c, MPI_Request r, std::string what, int tag, int peer)
      : comm_(c), req_(r), what_(std::move(what)), tag_(tag), peer_(peer) {}
  ~MpiWork() override {
    if (req_ != MPI_REQUEST_NULL && !done_) {
      // Destroyed while in flight (an exception unwound past it): the job is going down anyway.
      MPI_Request_free(&req_);
    }
  }
  bool test() override;
  void wait() override;

 private:
  void finish();
  MpiCommunicator* comm_;
  MPI_Request req_;
  std::string what_;
  int tag_, peer_;  // peer >= 0: point-to-point (no arrival tracking)
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name) : comm_(comm) {
    name_ = std::move(name);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int wr = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    world_ranks_.resize(size_t(size_));
    check(MPI_Allgather(&wr, 1, MPI_INT, world_ranks_.data(), 1, MPI_INT, comm_), "Allgather");
    check(MPI_Comm_dup(comm_, &arrive_), "Comm_dup");
  }
  ~MpiCommunicator() override {
    if (!g_mpi) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Comm_free(&arrive_);
    if (comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) override {
    const MPI_Datatype ty = mpi_type(t, "all_reduce", true);  // a refused tensor announces no arrival
    const int tag = arrive();
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), int(t.numel()), ty, mpi_op(op), comm_, &r), "Iallreduce");
    return std::make_unique<MpiWork>(this, r, "all_reduce", tag, -1);
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    check_counts(counts, in.numel(), out.numel(), "reduce_scatter");
    FORGE_CHECK(in.dtype() == out.dtype(), "reduce_scatter: input and output dtypes differ");
    std::vector<int> c(counts.begin(), counts.end());
    const MPI_Datatype ty = mpi_type(in, "reduce_scatter", true);
    mpi_type(out, "reduce_scatter", true);
    const int tag = arrive();
    MPI_Request r;
    check(MPI_Ireduce_scatter(in.raw_data(), out.raw_data(), c.data(), ty, MPI_SUM, comm_, &r), "Ireduce_scatter");
    return std::make_unique<MpiWork>(this, r, "reduce_scatter", tag, -1);
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    check_counts(counts, out.numel(), in.numel(), "all_gather");
    FORGE_CHECK(in.dtype() == out.dtype(), "all_gather: input and output dtypes differ");
    std::vector<int> c(counts.begin(), counts.end()), displ(counts.size(), 0);
    for (size_t i = 1; i < c.size(); ++i) displ[i] = displ[i - 1] + c[i - 1];
    const MPI_Datatype ty = mpi_type(out, "all_gather");
    mpi_type(in, "all_gather");
    const int tag = arrive();
    MPI_Request r;
    check(MPI_Iallgatherv(in.raw_data(), c[size_t(rank_)], ty, out.raw_data(), c.data(), displ.data(), ty, comm_, &r),
          "Iallgatherv");
    return std::make_unique<MpiWork>(this, r, "all_gather", tag, -1);
  }
  std::unique_ptr<Work> send_async(const Tensor& t, int dst, int tag) override {
    MPI_Request r;
    check(MPI_Isend(t.raw_data(), int(t.numel()), mpi_type(t, "send"), dst, tag, comm_, &r), "Isend");
    return std::make_unique<MpiWork>(this, r, "send to rank " + std::to_string(world_ranks_.at(size_t(dst))), -1, dst);
  }
  std::unique_ptr<Work> recv_async(Tensor& t, int src, int tag) override {
    MPI_Request r;
    check(MPI_Irecv(t.raw_data(), int(t.numel()), mpi_type(t, "recv"), src, tag, comm_, &r), "Irecv");
    return std::make_unique<MpiWork>(this, r, "recv from rank " + std::to_string(world_ranks_.at(size_t(src))), -1,
                                     src);
  }
  void broadcast(Tensor& t, int root) override {
    const MPI_Datatype ty = mpi_type(t, "broadcast");
    const int tag = arrive();
    MPI_Request r;
    check(MPI_Ibcast(t.raw_data(), int(t.numel()), ty, root, comm_, &r), "Ibcast");
    MpiWork(this, r, "broadcast", tag, -1).wait();
  }
  void barrier() override {
    const int tag = arrive();
    MPI_Request r;
    check(MPI_Ibarrier(comm_, &r), "Ibarrier");
    MpiWork(this, r, "barrier", tag, -1).wait();
  }
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override {
    MPI_Comm c;
    check(MPI_Comm_split(comm_, color, key, &c), "Comm_split");
    return std::make_unique<MpiCommunicator>(c, name);
  }

  // Called by MpiWork (or a device backend's work) when a collective is done: the first rank
  // collects the arrivals.
  void arrived(int tag) override {
    if (rank_ != 0 || tag < 0) return;
    for (int p = 1; p < size_; ++p) MPI_Recv(nullptr, 0, MPI_BYTE, p, tag, arrive_, MPI_STATUS_IGNORE);
  }
  [[noreturn]] void timed_out(const std::string& what, int tag, int peer) {
    const std::string where = "rank " + std::to_string(world_ranks_[size_t(rank_)]) + ": " + what + " on the " + name_ +
                              " group (world ranks " + join(world_ranks_) + ") at step " +
                              std::to_string(current_step()) + " did not finish within " +
                              std::to_string(int(timeout())) + " s";
    if (peer >= 0) throw Error(where + " (rank " + std::to_string(world_ranks_[size_t(peer)]) + " stalled or died)");
    if (rank_ != 0)
      throw Error(where + "; waiting for the others (rank " + std::to_string(world_ranks_[0]) +
                  " names the ranks that never arrived)");
    std::vector<int> missing;
    for (int p = 1; p < size_; ++p) {
      int flag = 0;
      MPI_Iprobe(p, tag, arrive_, &flag, MPI_STATUS_IGNORE);
      if (!flag) missing.push_back(world_ranks_[size_t(p)]);
    }
    throw Error(where + ": " + (missing.empty() ? std::string("every rank arrived, the transfer itself stalled")
                                                : "rank " + join(missing) + " never reached it (stalled or dead)"));
  }
  [[noreturn]] void stalled(const std::string& what, int token) override { timed_out(what, token, -1); }

  // Numbers the collective and tells the first rank this rank reached it.
  int arrive() override {
    const int tag = int(++seq_ % 32000);
    if (rank_ != 0) {
      MPI_Request r;
      check(MPI_Isend(nullptr, 0, MPI_BYTE, 0, tag, arrive_, &r), "Isend");
      MPI_Request_free(&r);
    }
    return tag;
  }

 protected:
  void reduce_doubles(double* v, int n, ReduceOp op) override {
    const int tag = arrive();
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, mpi_op(op), comm_, &r), "Iallreduce");
    MpiWork(this, r, "all_reduce", tag, -1).wait();
  }

 private:
  void check_counts(const std::vector<int64_t>& counts, int64_t whole, int64_t part, const char* what) const {
    FORGE_CHECK(int(counts.size()) == size_, what, ": ", counts.size(), " counts for a group of ", size_);
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    FORGE_CHECK(total == whole && counts[size_t(rank_)] == part, what, ": counts sum to ", total, " (rank part ",
                counts[size_t(rank_)], ") but the tensors hold ", whole, " and ", part, " elements");
  }
  MPI_Comm comm_, arrive_;
  int rank_ = 0, size_ = 1;
  int64_t seq_ = 0;
};

bool MpiWork::test() {
  if (done_) return true;
  int flag = 0;
  check(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), "Test");
  if (flag) finish();
  return done_;
}

void MpiWork::finish() {
  done_ = true;
  if (peer_ < 0) comm_->arrived(tag_);
}

void MpiWork::wait() {
  if (done_) return;
  // The first rank waits the timeout; the others a little longer, so the first rank's error (which
  // names the missing ranks) is the one a user sees.
  const double limit = timeout() <= 0 ? 0 : timeout() + (comm_->rank() == 0 || peer_ >= 0 ? 0 : 2 + timeout() / 10);
  const auto start = Clock::now();
  for (int spin = 0; !test(); ++spin) {
    if (spin < 200) continue;
    std::this_thread::sleep_for(std::chrono::microseconds(spin < 1000 ? 20 : 200));
    if (limit > 0 && std::chrono::duration<double>(Clock::now() - start).count() > limit)
      comm_->timed_out(what_, tag_, peer_);
  }
}
}  // namespace

std::unique_ptr<Communicator> mpi_world() {
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "Init_thread");
  g_mpi = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
}

bool mpi_initialized() { return g_mpi; }

void abort_job(int code) {
  std::fflush(stderr);
  if (g_mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void finalize() {
  if (!g_mpi) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace forge::parallel
