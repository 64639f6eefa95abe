// Ctrl-C / SIGTERM for long jobs: the first signal asks the job to stop at a safe point (it checks
// the flag, saves what it has and exits 130); a second one exits at once.
//
//   const std::atomic<bool>& stop = clipcap::install_interrupt_handler("clipcap-train: interrupted: saving a checkpoint");
//   while (...) { if (stop) break; ... }
#pragma once

#include <atomic>
#include <string>

namespace clipcap {

// message: printed on stderr at the first signal (a newline is added). Returns the stop flag.
const std::atomic<bool>& install_interrupt_handler(const std::string& message);

}  // namespace clipcap
