// What tests/build/check_signal_handlers.py must refuse (not compiled).
#include <csignal>

void on_int(int) {}

void install() {
  std::signal(SIGINT, on_int);
  struct sigaction sa = {};
  sa.sa_handler = on_int;
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // fine: no handler runs
}
