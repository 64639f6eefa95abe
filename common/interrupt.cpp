#include "common/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace clipcap {

namespace {

std::atomic<bool> g_stop{false};
char g_message[512];
size_t g_message_len = 0;

void on_signal(int) {
  if (g_stop.exchange(true)) ::_exit(130);
  ssize_t ignored = ::write(STDERR_FILENO, g_message, g_message_len);  // async-signal-safe
  (void)ignored;
}

}  // namespace

const std::atomic<bool>& install_interrupt_handler(const std::string& message) {
  std::string text = "\n" + message + " (Ctrl-C again to stop at once)\n";
  g_message_len = std::min(text.size(), sizeof g_message);
  std::memcpy(g_message, text.data(), g_message_len);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  return g_stop;
}

}  // namespace clipcap
