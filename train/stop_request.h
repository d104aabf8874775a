#pragma once
// Asking a training run to stop cleanly: SIGINT (Ctrl-C), SIGTERM (kill, Slurm preemption) and
// SIGUSR1 (Slurm's `--signal=USR1@SECONDS` warning; mpirun forwards it to every rank) make the run
// finish its current step, write a checkpoint and exit, so that it resumes later where it stopped.
// A second SIGINT or SIGTERM quits at once, as if no handler were installed.

namespace forge::train {

// Installs the handlers while it lives and restores the previous ones after.
class StopRequest {
 public:
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;
  int signal() const;  // the first signal received, 0 while none
};

const char* signal_name(int sig);  // "SIGINT", "SIGTERM", "SIGUSR1"

}  // namespace forge::train
