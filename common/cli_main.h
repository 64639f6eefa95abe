// The shared entry point of every clipcap executable: turns any exception into one line on stderr
// and a non-zero exit, never an abort or a libtorch backtrace.
//
//   int main(int argc, char** argv) {
//     return clipcap::run_main("clipcap-infer", [&] { return run(argc, argv); });
//   }
#pragma once

#include <functional>
#include <string>

namespace clipcap {

int run_main(const std::string& program, const std::function<int()>& body);

}  // namespace clipcap
