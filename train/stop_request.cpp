#include "train/stop_request.h"

#include <unistd.h>

#include <csignal>

namespace forge::train {
namespace {

volatile std::sig_atomic_t g_signal = 0;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1};
struct sigaction g_previous[3];

void on_signal(int sig) {
  if (g_signal != 0 && sig != SIGUSR1) {  // asked twice: quit now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  if (g_signal == 0) g_signal = sig;
  static const char msg[] = "\nforge train: stop requested: finishing this step, then a checkpoint "
                            "(Ctrl-C again to quit at once)\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);  // async-signal-safe, unlike stdio
}

}  // namespace

StopRequest::StopRequest() {
  g_signal = 0;
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;  // reads, writes and MPI's polling carry on
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_previous[i]);
}

StopRequest::~StopRequest() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
}

int StopRequest::signal() const { return g_signal; }

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}

}  // namespace forge::train
