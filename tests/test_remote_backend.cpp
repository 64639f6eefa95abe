// The remote (OpenAI-compatible) backend's pieces in process, against a fake endpoint on loopback:
// what a request carries, retries, every kind of bad endpoint as one clear error naming it, a hung
// server within the timeout, concurrency and order, per-item failures; prompt templates and the
// image grid of the video pipeline's remote modes.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "backend/openai_backend.h"
#include "common/base64.h"
#include "common/prompt_template.h"
#include "common/stopwatch.h"
#include "image/frame_grid.h"
#include "tests/serve_test_support.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::FakeEndpoint;

Image solid(int64_t w, int64_t h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  for (int64_t i = 0; i < w * h; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
  return img;
}

EndpointOptions endpoint(const std::string& url) {
  EndpointOptions e;
  e.url = url;
  e.model = "m";
  e.retry_delay_s = 0.01;
  e.timeout_s = 5;
  return e;
}

// The text part of a recorded request.
std::string prompt_of(const nlohmann::json& body) {
  for (const auto& part : body["messages"][0]["content"])
    if (part["type"] == "text") return part["text"];
  return "";
}

TEST(PromptTemplate, FillsFieldsAndKeepsDoubledBraces) {
  EXPECT_EQ(fill_prompt_template("At {frame_time} s after \"{previous_caption}\" {{json}}",
                                 {{"frame_time", "2.000"}, {"previous_caption", "A dog."}}),
            "At 2.000 s after \"A dog.\" {json}");
  EXPECT_EQ(fill_prompt_template("no fields", {}), "no fields");
  EXPECT_NO_THROW(check_prompt_template("{a} and {b}", {"a", "b"}, "--prompt"));
}

TEST(PromptTemplate, UnknownFieldsAndUnmatchedBracesNameTheFlag) {
  test::expect_error([] { check_prompt_template("Describe {frame_tme}.", {"frame_time"}, "--prompt"); },
                     {"--prompt", "unknown field {frame_tme}", "{frame_time}"});
  test::expect_error([] { check_prompt_template("Describe {frame_time.", {"frame_time"}, "--first-prompt"); },
                     {"--first-prompt", "unmatched brace at character 10"});
  test::expect_error([] { check_prompt_template("a } b", {}, "--summary-prompt"); }, {"--summary-prompt", "unmatched brace"});
}

TEST(FrameGrid, TilesFramesInTimeOrderAtTheTileSize) {
  const std::vector<Image> frames = {solid(160, 90, 255, 0, 0), solid(160, 90, 0, 255, 0), solid(160, 90, 0, 0, 255)};
  const Image tall = tile_frames(frames, {1, 64});
  EXPECT_EQ(tall.width, 64);
  EXPECT_EQ(tall.height, 3 * 36);  // 64 * 90 / 160
  const auto px = [&](const Image& img, int64_t x, int64_t y) {
    const uint8_t* p = img.row(y) + 3 * x;
    return std::vector<int>{p[0], p[1], p[2]};
  };
  EXPECT_EQ(px(tall, 10, 10), (std::vector<int>{255, 0, 0}));   // frame 0 on top
  EXPECT_EQ(px(tall, 10, 50), (std::vector<int>{0, 255, 0}));
  EXPECT_EQ(px(tall, 10, 100), (std::vector<int>{0, 0, 255}));
  const Image wide = tile_frames(frames, {2, 64});  // 2 columns: the last row is half empty (black)
  EXPECT_EQ(wide.width, 128);
  EXPECT_EQ(wide.height, 72);
  EXPECT_EQ(px(wide, 70, 10), (std::vector<int>{0, 255, 0}));
  EXPECT_EQ(px(wide, 70, 50), (std::vector<int>{0, 0, 0}));
  test::expect_error([&] { tile_frames(frames, {0, 64}); }, {"--grid-columns"});
  test::expect_error([&] { tile_frames({}, {1, 64}); }, {"no frames"});
}

TEST(OpenAIChatClient, SendsModelMessageKeyAndSamplingAndReadsUsage) {
  FakeEndpoint fake([](const httplib::Request&, httplib::Response& res, int) {
    res.set_content(FakeEndpoint::answer("A cat.", 12, 4), "application/json");
  });
  EndpointOptions e = endpoint(fake.base_url() + "/");  // a trailing slash is fine
  e.api_key = "sk-test";
  OpenAIChatClient client(e);
  EXPECT_EQ(client.url(), fake.base_url() + "/chat/completions");
  ChatParams p;
  p.temperature = 0.7;
  p.top_p = 0.9;
  p.max_tokens = 30;
  p.seed = 5;
  const ChatAnswer a = client.complete({text_part("Describe."), image_part("\x89PNG", "image/png")}, p);
  EXPECT_EQ(a.text, "A cat.");
  EXPECT_EQ(a.prompt_tokens, 12);
  EXPECT_EQ(a.completion_tokens, 4);
  EXPECT_EQ(a.attempts, 1);
  const auto calls = fake.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, "/v1/chat/completions");
  EXPECT_EQ(calls[0].authorization, "Bearer sk-test");
  const auto& b = calls[0].body;
  EXPECT_EQ(b["model"], "m");
  EXPECT_EQ(b["messages"][0]["role"], "user");
  EXPECT_EQ(b["messages"][0]["content"][0]["text"], "Describe.");
  EXPECT_EQ(b["messages"][0]["content"][1]["image_url"]["url"], "data:image/png;base64," + base64_encode(std::string_view("\x89PNG")));
  EXPECT_DOUBLE_EQ(b["temperature"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(b["top_p"].get<double>(), 0.9);
  EXPECT_EQ(b["max_tokens"], 30);
  EXPECT_EQ(b["seed"], 5);
  // Greedy: temperature 0, and nothing the server should default itself.
  client.complete({text_part("x")});
  const auto greedy = fake.calls()[1].body;
  EXPECT_EQ(greedy["temperature"], 0);
  EXPECT_FALSE(greedy.contains("max_tokens") || greedy.contains("seed") || greedy.contains("top_p"));
}

TEST(OpenAIChatClient, RetriesOverloadAndServerErrorsThenAnswers) {
  FakeEndpoint fake([](const httplib::Request&, httplib::Response& res, int call) {
    if (call == 0) {
      res.status = 429;
      res.set_header("Retry-After", "0");
      res.set_content(R"({"error": {"message": "busy"}})", "application/json");
    } else if (call == 1) {
      res.status = 503;
    } else {
      res.set_content(FakeEndpoint::answer("third time"), "application/json");
    }
  });
  OpenAIChatClient client(endpoint(fake.base_url()));
  const ChatAnswer a = client.complete({text_part("x")});
  EXPECT_EQ(a.text, "third time");
  EXPECT_EQ(a.attempts, 3);
  EXPECT_EQ(fake.calls().size(), 3u);
}

TEST(OpenAIChatClient, BadEndpointsGiveOneClearErrorNamingTheEndpoint) {
  struct Case {
    int status;
    std::string body;
    std::vector<std::string> message;
  };
  const std::vector<Case> unusable = {
      {401, R"({"error": {"message": "Incorrect API key"}})", {"HTTP 401", "API key was refused", "Incorrect API key"}},
      {404, "Not Found", {"HTTP 404", "not an OpenAI-compatible chat-completions path"}},
      {200, "<html>hello</html>", {"not JSON", "<html>hello</html>"}},
      {200, R"({"id": "x", "object": "chat.completion"})", {"no choices"}},
      {200, R"({"choices": [{"message": {"content": null}}]})", {"choices[0].message.content is not a string"}},
  };
  for (const Case& c : unusable) {
    FakeEndpoint fake([&](const httplib::Request&, httplib::Response& res, int) {
      res.status = c.status;
      res.set_content(c.body, "application/json");
    });
    OpenAIChatClient client(endpoint(fake.base_url()));
    std::vector<std::string> parts = c.message;
    parts.push_back(fake.base_url() + "/chat/completions");
    try {
      client.complete({text_part("x")});
      ADD_FAILURE() << "no error for " << c.status << " " << c.body;
    } catch (const BackendUnavailable& e) {
      for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
    EXPECT_EQ(fake.calls().size(), 1u) << "not retried: " << c.body;
  }
  {  // A request the endpoint refuses is this item's problem, not retried.
    FakeEndpoint fake([](const httplib::Request&, httplib::Response& res, int) {
      res.status = 413;
      res.set_content(R"({"error": {"message": "image too large"}})", "application/json");
    });
    OpenAIChatClient client(endpoint(fake.base_url()));
    test::expect_error([&] { client.complete({text_part("x")}); }, {fake.base_url(), "HTTP 413", "image too large"});
    EXPECT_EQ(fake.calls().size(), 1u);
  }
  {  // Nothing listening: retried, then given up.
    EndpointOptions e = endpoint("http://127.0.0.1:" + std::to_string(test::closed_port()) + "/v1");
    e.retries = 2;
    OpenAIChatClient client(e);
    try {
      client.complete({text_part("x")});
      ADD_FAILURE() << "no error";
    } catch (const TransientEndpointError& err) {
      EXPECT_NE(std::string(err.what()).find(e.url + "/chat/completions: cannot connect"), std::string::npos) << err.what();
      EXPECT_NE(std::string(err.what()).find("(3 attempts)"), std::string::npos) << err.what();
    }
  }
}

TEST(OpenAIChatClient, AHungServerIsGivenUpWithinTheTimeout) {
  std::atomic<bool> release{false};
  FakeEndpoint fake([&](const httplib::Request&, httplib::Response& res, int) {
    const auto t0 = Clock::now();
    while (!release && seconds_since(t0) < 20) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    res.set_content(FakeEndpoint::answer("late"), "application/json");
  });
  EndpointOptions e = endpoint(fake.base_url());
  e.timeout_s = 0.5;
  e.retries = 1;
  OpenAIChatClient client(e);
  const auto t0 = Clock::now();
  test::expect_error([&] { client.complete({text_part("x")}); },
                     {fake.base_url(), "no answer within the timeout of 0.5 s", "(2 attempts)"});
  EXPECT_LT(seconds_since(t0), 10.0);  // two attempts of 0.5 s, not the server's 20 s
  release = true;
}

TEST(OpenAIBackend, KeepsConcurrencyRequestsInFlightAndAnswersInOrder) {
  std::atomic<int> in_flight{0}, most{0};
  FakeEndpoint fake([&](const httplib::Request& req, httplib::Response& res, int) {
    const int now = ++in_flight;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    --in_flight;
    res.set_content(FakeEndpoint::answer("re: " + prompt_of(nlohmann::json::parse(req.body)), 5, 2), "application/json");
  });
  OpenAIBackendOptions o;
  o.endpoint = endpoint(fake.base_url());
  o.concurrency = 3;
  o.image_format = "png";
  OpenAIBackend backend(o);
  std::vector<ImagePayload> payloads;
  for (int i = 0; i < 9; ++i) payloads.push_back(backend.prepare(solid(8, 8, uint8_t(i * 20), 0, 0)));
  EXPECT_EQ(decode_image(std::vector<uint8_t>(payloads[3].bytes.begin(), payloads[3].bytes.end()), "png").pixels,
            solid(8, 8, 60, 0, 0).pixels);  // PNG: lossless
  std::vector<std::vector<const ImagePayload*>> requests;
  std::vector<std::string> prompts;
  for (int i = 0; i < 9; ++i) {
    requests.push_back({&payloads[static_cast<size_t>(i)]});
    prompts.push_back("p" + std::to_string(i));
  }
  const auto captions = backend.caption_with_prompts(requests, prompts, DecodeOptions{});
  ASSERT_EQ(captions.size(), 9u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(captions[static_cast<size_t>(i)].text, "re: p" + std::to_string(i));
  EXPECT_EQ(most.load(), 3);
  const RemoteUsage u = backend.usage();
  EXPECT_EQ(u.requests, 9);
  EXPECT_EQ(u.prompt_tokens, 45);
  EXPECT_EQ(u.completion_tokens, 18);
  // Without prompts of its own a request carries the backend's prompt.
  EXPECT_EQ(backend.caption({{&payloads[0]}}, DecodeOptions{})[0].text, "re: " + o.prompt);
}

// The caption server passes a seed per request when it batches requests that differ only in it.
TEST(OpenAIBackend, SamplingRequestsCarryTheirOwnSeedsGreedyOnesNone) {
  FakeEndpoint fake([&](const httplib::Request& req, httplib::Response& res, int) {
    const nlohmann::json body = nlohmann::json::parse(req.body);
    res.set_content(FakeEndpoint::answer(body.contains("seed") ? "seed " + body["seed"].dump() : "no seed", 5, 2),
                    "application/json");
  });
  OpenAIBackendOptions o;
  o.endpoint = endpoint(fake.base_url());
  o.concurrency = 2;
  OpenAIBackend backend(o);
  const ImagePayload image = backend.prepare(solid(8, 8, 10, 20, 30));
  const std::vector<std::vector<const ImagePayload*>> requests = {{&image}, {&image}, {&image}};
  DecodeOptions sample;
  sample.strategy = "sample";
  sample.seed = 1;
  const auto seeded = backend.caption(requests, sample, nullptr, {5, 9, 5});
  ASSERT_EQ(seeded.size(), 3u);
  EXPECT_EQ(seeded[0].text, "seed 5");
  EXPECT_EQ(seeded[1].text, "seed 9");
  EXPECT_EQ(seeded[2].text, "seed 5");
  EXPECT_EQ(backend.caption(requests, sample)[1].text, "seed 1");  // without seeds: the options' seed
  EXPECT_EQ(backend.caption(requests, DecodeOptions{}, nullptr, {5, 9, 5})[0].text, "no seed");  // greedy
  EXPECT_THROW(backend.caption(requests, sample, nullptr, {5}), Error);
}

TEST(OpenAIBackend, AnItemTheEndpointGivesUpOnIsAnErrorAndTheOthersGoOn) {
  FakeEndpoint fake([](const httplib::Request& req, httplib::Response& res, int) {
    if (prompt_of(nlohmann::json::parse(req.body)) == "bad") {
      res.status = 502;
      return;
    }
    res.set_content(FakeEndpoint::answer("fine"), "application/json");
  });
  OpenAIBackendOptions o;
  o.endpoint = endpoint(fake.base_url());
  o.endpoint.retries = 1;
  o.concurrency = 2;
  OpenAIBackend backend(o);
  const ImagePayload p = backend.prepare(solid(8, 8, 1, 2, 3));
  const auto captions = backend.caption_with_prompts({{&p}, {&p}, {&p}}, {"ok", "bad", "ok"}, DecodeOptions{});
  EXPECT_EQ(captions[0].text, "fine");
  EXPECT_EQ(captions[2].text, "fine");
  EXPECT_EQ(captions[1].text, "");
  EXPECT_NE(captions[1].error.find(fake.base_url() + "/chat/completions: HTTP 502"), std::string::npos) << captions[1].error;
  EXPECT_EQ(backend.usage().failed, 1);
  EXPECT_EQ(backend.usage().retries, 1);
}

TEST(OpenAIBackend, BeamSearchAndBadFlagsAreRefusedBeforeAnyRequest) {
  DecodeOptions beam;
  beam.strategy = "beam";
  beam.beam_size = 3;
  test::expect_error([&] { chat_params(beam, 0); }, {"--strategy beam", "greedy or sample"});
  DecodeOptions reranked;  // a remote endpoint writes one caption: nothing to rerank
  reranked.rerank = "clip";
  test::expect_error([&] { chat_params(reranked, 0); }, {"--rerank clip", "local backend"});
  OpenAIBackendOptions o;
  o.endpoint = endpoint("localhost:8000/v1");
  test::expect_error([&] { OpenAIBackend b(o); }, {"--endpoint", "http:// or https://"});
  o.endpoint = endpoint("http://localhost:8000/v1");
  o.concurrency = 0;
  test::expect_error([&] { OpenAIBackend b(o); }, {"--concurrency"});
  o.concurrency = 1;
  o.image_format = "gif";
  test::expect_error([&] { OpenAIBackend b(o); }, {"--image-format"});
  o.image_format = "jpeg";
  o.endpoint.model = "";
  test::expect_error([&] { OpenAIBackend b(o); }, {"--api-model"});
}

}  // namespace
}  // namespace clipcap
