#include "train/stop_request.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <thread>

namespace forge::train {
namespace {

std::atomic<int> g_signal{0};     // the first signal while armed
std::atomic<bool> g_armed{false};  // a StopRequest lives

sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&s, sig);
  return s;
}

// As if no handler were installed: the default action, on this thread (the only one that does
// not block the signal), ends the process with the signal's exit status.
[[noreturn]] void die_of(int sig) {
  std::signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  std::raise(sig);
  _exit(128 + sig);  // not reached
}

void watch(sigset_t set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    const bool first = g_signal.load() == 0;
    if (!g_armed.load() || (!first && sig != SIGUSR1)) die_of(sig);  // not training, or asked twice
    if (!first) continue;
    g_signal.store(sig);
    static const char msg[] = "\nforge train: stop requested: finishing this step, then a checkpoint "
                              "(Ctrl-C again to quit at once)\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  }
}

}  // namespace

void watch_stop_signals() {
  static std::once_flag once;
  std::call_once(once, [] {
    const sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread(watch, set).detach();
  });
}

StopRequest::StopRequest() {
  watch_stop_signals();
  g_signal.store(0);
  g_armed.store(true);
}

StopRequest::~StopRequest() { g_armed.store(false); }

int StopRequest::signal() const { return g_signal.load(); }

void send_stop_signal(int sig) {
  kill(getpid(), sig);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (g_armed.load() && g_signal.load() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}

}  // namespace forge::train
