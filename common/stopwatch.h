// Wall-clock seconds for logs, progress and timings (steady clock: immune to clock changes).
//
//   const auto t0 = clipcap::Clock::now();   ...   double s = clipcap::seconds_since(t0);
#pragma once

#include <chrono>

namespace clipcap {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace clipcap
