#include "common/shard_spec.h"

#include <cstdlib>
#include <stdexcept>

#include "common/error.h"

namespace clipcap {

ShardSpec ShardSpec::parse(const std::string& spec) {
  const size_t slash = spec.find('/');
  ShardSpec s;
  try {
    size_t used = 0;
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    s.index = std::stoi(spec.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("index");
    const std::string count = spec.substr(slash + 1);
    s.count = std::stoi(count, &used);
    if (used != count.size()) throw std::invalid_argument("count");
  } catch (const std::exception&) {
    throw Error("--shard: expected i/N (e.g. 0/4), got '" + spec + "'");
  }
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    throw Error("--shard: need 0 <= i < N, got '" + spec + "'");
  return s;
}

ShardSpec ShardSpec::from_env() {
  const char* rank = std::getenv("RANK");
  const char* world = std::getenv("WORLD_SIZE");
  if (!rank || !world || !*rank || !*world) return {};
  try {
    return parse(std::string(rank) + "/" + world);
  } catch (const Error&) {
    throw Error(std::string("RANK=") + rank + " WORLD_SIZE=" + world + ": need 0 <= RANK < WORLD_SIZE");
  }
}

std::vector<std::string> take_shard(const std::vector<std::string>& items, const ShardSpec& shard) {
  std::vector<std::string> out;
  for (size_t i = static_cast<size_t>(shard.index); i < items.size(); i += static_cast<size_t>(shard.count))
    out.push_back(items[i]);
  return out;
}

}  // namespace clipcap
