#pragma once
// Asking a training run to stop cleanly: SIGINT (Ctrl-C), SIGTERM (kill, Slurm preemption) and
// SIGUSR1 (Slurm's `--signal=USR1@SECONDS` warning; mpirun forwards it to every rank) make the run
// finish its current step, write a checkpoint and exit, so that it resumes later where it stopped.
// A second SIGINT or SIGTERM quits at once, as if no handler were installed.
//
// The signals never interrupt a thread: they are blocked in every thread and taken by one watcher
// thread (sigwait). A handler would run on whatever thread the kernel picks, on that thread's
// stack, and oneDNN 2.6's JIT GEMM keeps live data below the stack pointer, beyond the 128-byte
// red zone: a handler's frame overwrote it and corrupted the heap (about one Ctrl-C in 50).

namespace forge::train {

// Blocks SIGINT, SIGTERM and SIGUSR1 in this thread, so in every thread started after it, and
// starts the watcher. Call it before any other thread starts (`forge train` does so first); a
// thread started earlier still takes these signals with their default action. Idempotent.
void watch_stop_signals();

// While one lives, a signal asks the run to stop; outside that time a signal acts as its default
// (the process ends at once). Starts the watcher if no one has.
class StopRequest {
 public:
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;
  int signal() const;  // the first signal received, 0 while none
};

// Sends `sig` to this process, as `kill` from outside would, and waits until a living StopRequest
// has seen it (FORGE_TEST_SIGNAL: the stop must come after that very step).
void send_stop_signal(int sig);

const char* signal_name(int sig);  // "SIGINT", "SIGTERM", "SIGUSR1"

}  // namespace forge::train
