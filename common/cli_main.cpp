#include "common/cli_main.h"

#include <c10/util/Exception.h>

#include <iostream>

#include "common/error.h"

namespace clipcap {

namespace {
// libtorch messages can span lines (and carry a C++ backtrace); users get the first line only.
std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}
}  // namespace

int run_main(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
  } catch (const c10::Error& e) {
    std::cerr << program << ": error: " << first_line(e.what_without_backtrace()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << program << ": error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << first_line(e.what()) << "\n";
  }
  return 1;
}

}  // namespace clipcap
