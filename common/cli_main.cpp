#include "common/cli_main.h"

#include <c10/util/Exception.h>

#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "common/strings.h"

namespace clipcap {

namespace {

// libstdc++ says "filesystem error: <operation>: <reason> [<path1>] [<path2>]".
std::string filesystem_message(const std::filesystem::filesystem_error& e) {
  std::string op = e.what();
  const std::string prefix = "filesystem error: ";
  if (op.rfind(prefix, 0) == 0) op.erase(0, prefix.size());
  if (const size_t bracket = op.find(" ["); bracket != std::string::npos) op.erase(bracket);
  const std::string reason = e.code().message();
  if (op.size() > reason.size() + 2 && op.compare(op.size() - reason.size(), reason.size(), reason) == 0)
    op.erase(op.size() - reason.size() - 2);
  std::string msg = e.path1().empty() ? op : e.path1().string() + ": " + op;
  if (!e.path2().empty()) msg += " (to " + e.path2().string() + ")";
  return msg + " (" + reason + ")";
}

}  // namespace

// libtorch messages can span lines (and carry a C++ backtrace): users get the first line.
int run_main(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
  } catch (const c10::Error& e) {
    std::cerr << program << ": error: " << first_line(e.what_without_backtrace()) << "\n";
  } catch (const std::filesystem::filesystem_error& e) {
    // "PATH: cannot create directories (Not a directory)" rather than libstdc++'s "filesystem
    // error: cannot create directories: Not a directory [PATH]": the file first, as everywhere.
    std::cerr << program << ": error: " << filesystem_message(e) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << program << ": error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << first_line(e.what()) << "\n";
  }
  return 1;
}

}  // namespace clipcap
