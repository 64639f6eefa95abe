// The small pieces every layer shares (common/): the bounded queue between threads, replacing a
// directory atomically, shards, option tables; and the subtitle format table.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/atomic_file.h"
#include "common/bounded_queue.h"
#include "common/json_util.h"
#include "common/option_table.h"
#include "common/shard_spec.h"
#include "infer/subtitle_formats.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

TEST(BoundedQueue, ProducersWaitForRoomAndTheConsumerDrainsBeforeTheEnd) {
  BoundedQueue<int> q(2, /*producers=*/2);
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p)
    producers.emplace_back([&q, p] {
      for (int i = 0; i < 50; ++i) q.push(p * 100 + i);
      q.producer_done();
    });
  std::vector<int> got;
  while (std::optional<int> v = q.pop()) got.push_back(*v);
  for (auto& t : producers) t.join();
  EXPECT_EQ(got.size(), 100u);  // nothing lost, the end only after both producers
  std::vector<int> first, second;
  for (int v : got) (v < 100 ? first : second).push_back(v);
  EXPECT_TRUE(std::is_sorted(first.begin(), first.end()));  // each producer's items in order
  EXPECT_TRUE(std::is_sorted(second.begin(), second.end()));
}

TEST(BoundedQueue, CloseFailsPushesButKeepsWhatIsQueued) {
  BoundedQueue<std::string> q(4);
  EXPECT_TRUE(q.push("a"));
  EXPECT_TRUE(q.push("b"));
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.push("c"));
  EXPECT_EQ(q.pop(), "a");
  EXPECT_EQ(q.try_pop(), "b");
  EXPECT_EQ(q.pop(), std::nullopt);
  // A producer blocked on a full queue is released by close().
  BoundedQueue<int> full(1);
  full.push(1);
  std::thread blocked([&] { EXPECT_FALSE(full.push(2)); });
  full.close();
  blocked.join();
}

// kBelowHalf: a producer that filled the queue waits until half of it is free, and the consumer
// can see it waiting (the video pipeline then gives the model every core).
TEST(BoundedQueue, BelowHalfRefillLetsProducersRestUntilHalfIsFree) {
  BoundedQueue<int> q(4, 1, Refill::kBelowHalf);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 8; ++i)
      if (q.push(i)) ++pushed;
    q.producer_done();
  });
  auto settle = [&](int want_pushed) {
    for (int i = 0; i < 400 && !(pushed == want_pushed && q.waiting_producers() == 1); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  settle(4);
  EXPECT_EQ(pushed, 4);
  EXPECT_EQ(q.waiting_producers(), 1);
  EXPECT_EQ(q.pop(), 0);  // one slot free: the producer still waits (3 of 4 queued)
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(pushed, 4);
  EXPECT_EQ(q.waiting_producers(), 1);
  EXPECT_EQ(q.pop(), 1);  // half free: it refills to full, then waits again
  settle(6);
  EXPECT_EQ(pushed, 6);
  std::vector<int> rest;
  while (std::optional<int> v = q.pop()) rest.push_back(*v);
  producer.join();
  EXPECT_EQ(rest, (std::vector<int>{2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(q.waiting_producers(), 0);
}

TEST(ReplaceDirectory, TheTargetIsTheOldOrTheCompleteNewDirectory) {
  const std::string dir = test::temp_dir("replace");
  fs::create_directories(dir + "/new.tmp");
  write_file_atomic(dir + "/new.tmp/a", "1");
  replace_directory(dir + "/new.tmp", dir + "/sub/target");  // the parent is made
  EXPECT_EQ(read_file(dir + "/sub/target/a"), "1");
  EXPECT_FALSE(fs::exists(dir + "/new.tmp"));
  fs::create_directories(dir + "/next.tmp");
  write_file_atomic(dir + "/next.tmp/b", "2");
  replace_directory(dir + "/next.tmp", dir + "/sub/target");
  EXPECT_FALSE(fs::exists(dir + "/sub/target/a"));  // replaced whole, not merged
  EXPECT_EQ(read_file(dir + "/sub/target/b"), "2");
  EXPECT_FALSE(fs::exists(dir + "/sub/target.old"));
  test::expect_error([&] { replace_directory(dir + "/missing.tmp", dir + "/other"); },
                     {dir + "/other", "cannot move " + dir + "/missing.tmp"});
}

TEST(ShardSpec, ItemsAreDealtRoundRobin) {
  const ShardSpec s = ShardSpec::parse("1/3");
  EXPECT_FALSE(s.owns(0));
  EXPECT_TRUE(s.owns(1));
  EXPECT_TRUE(s.owns(4));
  EXPECT_EQ(s.text(), "1/3");
  EXPECT_TRUE(s.sharded());
  EXPECT_FALSE(ShardSpec{}.sharded());
  test::expect_error([] { ShardSpec::parse("1/0"); }, {"--shard", "1/0"});
}

struct Knobs {
  int count = 1;
  double ratio = 0.5;
  bool on = false;
  std::string mode = "a";
};

TEST(OptionTable, OneRowDrivesValidationAndJson) {
  OptionTable<Knobs> t("knobs");
  t.field("count", "-c,--count", "how many", &Knobs::count).check([](const Knobs& k) {
    return k.count >= 1 ? "" : "must be >= 1";
  });
  t.field("ratio", "--ratio", "a share", &Knobs::ratio);
  t.field("on", "--on", "switch", &Knobs::on);
  t.field("mode", "--mode", "a or b", &Knobs::mode).choices({"a", "b"});
  Knobs k;
  k.count = 0;
  test::expect_error([&] { t.validate(k); }, {"knobs: count (--count) must be >= 1, got 0"});
  k = {};
  k.mode = "c";
  test::expect_error([&] { t.validate(k); }, {"knobs: mode (--mode) must be one of a, b, got \"c\""});
  k = {};
  k.ratio = 0.25;
  k.on = true;
  const nlohmann::json j = t.to_json(k);
  EXPECT_EQ(j, (nlohmann::json{{"count", 1}, {"ratio", 0.25}, {"on", true}, {"mode", "a"}}));
  const Knobs back = t.from_json({{"count", 4}}, "cfg.json", k);
  EXPECT_EQ(back.count, 4);
  EXPECT_EQ(back.ratio, 0.25);  // missing keys keep the defaults given
  test::expect_error([&] { t.from_json({{"count", "many"}}, "cfg.json", Knobs{}); }, {"cfg.json", "count", "wrong type"});
  test::expect_error([&] { t.from_json({{"count", -1}}, "cfg.json", Knobs{}); }, {"cfg.json: knobs: count"});
}

TEST(SubtitleFormats, NamesAreCheckedAndWrittenInTheTablesOrder) {
  EXPECT_EQ(parse_subtitle_formats("json,srt,json"), (std::vector<std::string>{"srt", "json"}));
  EXPECT_EQ(parse_subtitle_formats(""), std::vector<std::string>{});
  test::expect_error([] { parse_subtitle_formats("srt,ass"); }, {"--formats", "unknown format 'ass'", "srt, vtt, json"});
  EXPECT_EQ(subtitle_format("vtt").suffix, "_caption.vtt");
}

}  // namespace
}  // namespace clipcap

// Found by tests/fuzz/fuzz_model_config under UBSan: {"n_embd": 8.9e33} reached nlohmann's
// static_cast to an integer, which is undefined behaviour.
TEST(JsonRequire, IntegerFieldsTakeOnlyWholeNumbersInTheirRange) {
  const nlohmann::json j = {{"big", 8.88889e33}, {"half", 1.5},   {"whole", 3.0},         {"neg", -1},
                            {"wide", 5000000000LL}, {"list", {1, 1e300}}, {"ok_list", {1, 2}}};
  using clipcap::json_require;
  clipcap::test::expect_error([&] { json_require<int64_t>(j, "big", "config.json"); },
                     {"config.json: field 'big' is 8.88889e+33; expected an integer in range"});
  clipcap::test::expect_error([&] { json_require<int>(j, "half", "config.json"); }, {"field 'half' is 1.5"});
  EXPECT_EQ(json_require<int>(j, "whole", "config.json"), 3);
  clipcap::test::expect_error([&] { json_require<uint64_t>(j, "neg", "config.json"); },
                     {"field 'neg' is -1; expected a non-negative integer"});
  clipcap::test::expect_error([&] { json_require<int>(j, "wide", "config.json"); }, {"field 'wide' is 5000000000"});
  EXPECT_EQ(json_require<int64_t>(j, "wide", "config.json"), 5000000000LL);
  clipcap::test::expect_error([&] { json_require<std::vector<int64_t>>(j, "list", "config.json"); }, {"field 'list'"});
  EXPECT_EQ(json_require<std::vector<int64_t>>(j, "ok_list", "config.json"), (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(json_require<double>(j, "big", "config.json"), 8.88889e33);
}

