#include "common/cli_main.h"

#include <c10/util/Exception.h>

#include <iostream>

#include "common/error.h"
#include "common/strings.h"

namespace clipcap {

// libtorch messages can span lines (and carry a C++ backtrace): users get the first line.
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
