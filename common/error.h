// clipcap::Error: the one exception type the library throws for bad input.
//
//   throw clipcap::Error(path + ": tensor 'wte.weight' has shape [3, 4], config.json says [50257, 768]");
//
// Messages are one line, name the file (and the item inside it) first, then the problem. The
// executables print them as "clipcap-xxx: error: <message>" and exit 1 (see common/cli_main.h).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace clipcap {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "[2, 3, 4]": shapes in messages look like Python's so users can compare them with HF tooling.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace clipcap
