// Which share of a job this process takes: --shard i/N, or RANK / WORLD_SIZE from the environment
// (torchrun, EasyAnimate). Item k belongs to shard k % N.
//
//   clipcap::ShardSpec s = clipcap::ShardSpec::parse("1/4");       // or ShardSpec::from_env()
//   auto mine = clipcap::take_shard(paths, s);                      // items 1, 5, 9, ...
//   if (s.owns(k)) ...
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace clipcap {

struct ShardSpec {
  int index = 0, count = 1;  // this process takes items index, index + count, index + 2 * count, ...

  static ShardSpec parse(const std::string& spec);  // "i/N" with 0 <= i < N; Error naming --shard otherwise
  // RANK / WORLD_SIZE from the environment; {0, 1} when not set.
  static ShardSpec from_env();

  bool owns(size_t item) const { return static_cast<int>(item % static_cast<size_t>(count)) == index; }
  bool sharded() const { return count > 1; }
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

std::vector<std::string> take_shard(const std::vector<std::string>& items, const ShardSpec& shard);

}  // namespace clipcap
