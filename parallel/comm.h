// Communicators: collectives over a group of ranks. `MpiCommunicator` (OpenMPI) carries host
// tensors; an NCCL communicator for device tensors implements the same interface. Every wait has
// a deadline: a rank that stalls or dies makes the others fail with an error naming the
// collective, the group, the training step and (on the group's first rank) the ranks that never
// arrived, instead of hanging forever.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace forge::parallel {

enum class ReduceOp { Sum, Max, Min };

// A collective in flight. wait() blocks until it completes or the deadline passes (then throws).
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;  // true once complete; never blocks
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  const std::string& name() const { return name_; }  // "world", "dp", "tp", "pp"
  // World ranks of this group's members, in group rank order.
  const std::vector<int>& world_ranks() const { return world_ranks_; }

  // Tensors are contiguous; counts are elements. Non-blocking forms return a Work; the tensors
  // must stay alive and untouched until it completes.
  virtual std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  // in: the concatenation of every rank's part (counts[r] elements for rank r); out: this rank's part.
  virtual std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out,
                                                     const std::vector<int64_t>& counts) = 0;
  // in: this rank's counts[rank()] elements; out: every rank's part concatenated.
  virtual std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) = 0;
  virtual std::unique_ptr<Work> send_async(const Tensor& t, int dst, int tag) = 0;
  virtual std::unique_ptr<Work> recv_async(Tensor& t, int src, int tag) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum) { all_reduce_async(t, op)->wait(); }
  void reduce_scatter(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) {
    reduce_scatter_async(in, out, counts)->wait();
  }
  void all_gather(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) {
    all_gather_async(in, out, counts)->wait();
  }
  void send(const Tensor& t, int dst, int tag) { send_async(t, dst, tag)->wait(); }
  void recv(Tensor& t, int src, int tag) { recv_async(t, src, tag)->wait(); }
  // Reduces a few doubles over the group (losses, token counts, agreed steps).
  std::vector<double> reduce(std::vector<double> v, ReduceOp op);
  std::vector<double> sum(std::vector<double> v) { return reduce(std::move(v), ReduceOp::Sum); }

  // The group of ranks with the same color, ordered by key (MPI_Comm_split).
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string& name) = 0;

  // Arrival bookkeeping for collectives another backend runs for this group (NCCL under
  // parallel/comm_device.h), so that its timeouts name the ranks that never arrived as MPI's do:
  // arrive() as the collective starts, arrived(token) once it is done, and stalled() when it
  // outlived the deadline (throws; on the group's first rank naming the missing ranks).
  virtual int arrive() { return -1; }
  virtual void arrived(int) {}
  [[noreturn]] virtual void stalled(const std::string& what, int token);
  // Stops the backend's work in flight after an error (NCCL: ncclCommAbort); nothing for MPI.
  virtual void abort() {}

 protected:
  virtual void reduce_doubles(double* v, int n, ReduceOp op) = 0;  // in place over the group
  std::string name_;
  std::vector<int> world_ranks_;
};

// ---- the process-wide distributed context ------------------------------------------------------
// True when this process was started by an MPI launcher (mpirun, srun with PMIx).
bool launched_by_mpi();
// Initialises MPI once (thread level FUNNELED) and returns the world communicator; a process not
// started by a launcher gets a world of one rank without touching MPI.
Communicator& world();
bool mpi_initialized();
// Seconds a collective may wait before the run is stopped (0: forever). Default 600.
void set_timeout(double seconds);
double timeout();
// The training step shown in timeout errors.
void set_step(int64_t step);
int64_t current_step();
// Ends every rank of the job after an error (MPI_Abort), so no rank is left waiting.
[[noreturn]] void abort_job(int code);
// MPI_Finalize if initialised (normal exit).
void finalize();

}  // namespace forge::parallel
