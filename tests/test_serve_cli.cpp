// clipcap-serve, the executable, on a free loopback port, spoken to with curl: the OpenAI-shaped
// answers carry the captions clipcap-infer writes for the same images and options, concurrent
// requests share batches, every bad request gets its status and OpenAI's error body while the
// server goes on answering, the API key is enforced, and SIGTERM drains and exits 0.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/atomic_file.h"
#include "common/base64.h"
#include "tests/dataset_test_util.h"
#include "tests/serve_test_support.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace clipcap::test;
using json = nlohmann::json;

namespace {

const char* kImage = "images/rgb_160x120.png";
const char* kOther = "images/palette_100x30.png";

using Server = ServeProcess;

struct Reply {
  int status = 0;
  std::string body;
  json json_body() const { return json::parse(body, nullptr, false); }
};

// curl with a body from a file (-d @file would strip newlines: --data-binary keeps the bytes).
Reply curl(const std::string& args) {
  auto r = run("curl -s -S -m 60 -w '\\n%{http_code}' " + args);
  const size_t nl = r.out.rfind('\n');
  Reply reply;
  reply.body = nl == std::string::npos ? "" : r.out.substr(0, nl);
  reply.status = nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1);
  return reply;
}

Reply post_json(const Server& s, const std::string& path, const std::string& body, const std::string& extra = "") {
  const std::string file = s.dir() + "/body-" + std::to_string(std::hash<std::string>{}(body)) + ".json";
  write_text(file, body);
  return curl("-H 'Content-Type: application/json' --data-binary @" + file + " " + extra + " " + s.url(path));
}

std::string data_url(const std::string& path, const std::string& type = "image/png") {
  const std::string bytes = clipcap::read_file(path);
  return "data:" + type + ";base64," + clipcap::base64_encode(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

json chat(const std::string& url, json extra = json::object()) {
  json j = {{"model", "emoji-tiny"},
            {"messages", json::array({{{"role", "user"},
                                       {"content", json::array({{{"type", "text"}, {"text", "What is this?"}},
                                                                {{"type", "image_url"}, {"image_url", {{"url", url}}}}})}}})}};
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

std::string infer(const std::string& image, const std::string& flags = "") {
  auto r = run(tool("clipcap-infer") + " image --model " + source_path("models/emoji-tiny") + " --threads 1 " + flags +
               " " + image);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, r.out.find('\n'));
}

}  // namespace

// clipcap-serve --rerank clip: chat completions and /v1/captions answer clipcap-infer's reranked
// caption, and /v1/captions names the scores it was chosen by.
TEST(ServeCli, RerankedServerAnswersClipcapInfersRerankedCaption) {
  const std::string flags = "--beam 3 --rerank clip --rerank-candidates 4 --rerank-clip " + source_path("models/emoji-clip");
  Server s(flags);
  const std::string image = fixture(kImage);
  const std::string want = infer(image, flags);
  Reply chat_reply = post_json(s, "/v1/chat/completions", chat(data_url(image)).dump());
  EXPECT_EQ(chat_reply.json_body()["choices"][0]["message"]["content"], want) << chat_reply.body;
  Reply raw = curl("-H 'Content-Type: image/png' --data-binary @" + image + " " + s.url("/v1/captions"));
  const json body = raw.json_body();
  EXPECT_EQ(body["caption"], want) << raw.body;
  EXPECT_EQ(body["captions"][0]["rerank"]["candidates"], 4) << raw.body;
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeCli, CaptionsEqualClipcapInferGreedySampledAndStreamed) {
  Server s("");
  const std::string image = fixture(kImage), other = fixture(kOther);
  EXPECT_EQ(curl(s.url("/health")).json_body()["status"], "ok");
  EXPECT_EQ(curl(s.url("/v1/models")).json_body()["data"][0]["id"], "emoji-tiny");

  Reply greedy = post_json(s, "/v1/chat/completions", chat(data_url(image)).dump());
  ASSERT_EQ(greedy.status, 200) << greedy.body;
  json g = greedy.json_body();
  EXPECT_EQ(g["object"], "chat.completion");
  EXPECT_EQ(g["choices"][0]["message"]["content"], infer(image));
  EXPECT_EQ(g["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(g["choices"][0]["finish_reason"], "stop");
  EXPECT_GT(g["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(g["usage"]["prompt_tokens"].get<int>() + g["usage"]["completion_tokens"].get<int>(),
            g["usage"]["total_tokens"].get<int>());

  // Seeded sampling: the caption clipcap-infer samples with the same options; choice i uses seed + i.
  Reply sampled = post_json(s, "/v1/chat/completions",
                            chat(data_url(other), {{"temperature", 0.9}, {"seed", 11}, {"n", 2}}).dump());
  ASSERT_EQ(sampled.status, 200) << sampled.body;
  json sj = sampled.json_body();
  EXPECT_EQ(sj["choices"][0]["message"]["content"], infer(other, "--strategy sample --temperature 0.9 --seed 11"));
  EXPECT_EQ(sj["choices"][1]["message"]["content"], infer(other, "--strategy sample --temperature 0.9 --seed 12"));

  // max_tokens cuts the caption: finish_reason length.
  Reply cut = post_json(s, "/v1/chat/completions", chat(data_url(image), {{"max_tokens", 1}}).dump());
  EXPECT_EQ(cut.json_body()["choices"][0]["finish_reason"], "length") << cut.body;

  // Streamed: server-sent events with the same caption, a finish and [DONE].
  Reply streamed = post_json(s, "/v1/chat/completions", chat(data_url(image), {{"stream", true}}).dump());
  ASSERT_EQ(streamed.status, 200);
  std::string content;
  std::string finish;
  size_t at = 0;
  while ((at = streamed.body.find("data: ", at)) != std::string::npos) {
    const size_t end = streamed.body.find("\n\n", at);
    const std::string payload = streamed.body.substr(at + 6, end - at - 6);
    at = end;
    if (payload == "[DONE]") break;
    json c = json::parse(payload);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    for (const auto& ch : c["choices"]) {
      if (ch["delta"].contains("content")) content += ch["delta"]["content"].get<std::string>();
      if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
    }
  }
  EXPECT_EQ(content, infer(image));
  EXPECT_EQ(finish, "stop");
  EXPECT_NE(streamed.body.find("data: [DONE]\n\n"), std::string::npos);

  // /v1/captions: the bytes themselves, and multipart.
  Reply raw = curl("-H 'Content-Type: image/png' --data-binary @" + image + " " + s.url("/v1/captions"));
  EXPECT_EQ(raw.json_body()["caption"], infer(image)) << raw.body;
  Reply form = curl("-F image=@" + image + " " + s.url("/v1/captions"));
  EXPECT_EQ(form.json_body()["caption"], infer(image)) << form.body;

  const std::string metrics = curl(s.url("/metrics")).body;
  EXPECT_NE(metrics.find("clipcap_requests_total{endpoint=\"chat\",status=\"200\"} 4"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("clipcap_generated_tokens_total"), std::string::npos);
  EXPECT_EQ(s.stop(), 0);
  const std::string log = s.log();
  EXPECT_NE(log.find("\"path\":\"/v1/chat/completions\""), std::string::npos) << log;
  EXPECT_EQ(log.find("base64"), std::string::npos) << "no image data in the log";
  EXPECT_NE(log.find("clipcap-serve: stopped"), std::string::npos) << log;
}

TEST(ServeCli, TheOfficialOpenAiClientGetsTheCaptionsClipcapInferWrites) {
  // The npm package `openai`, installed by scripts/fetch_openai_client.sh (scripts/test.sh runs it).
  auto fetched = run(source_path("scripts/fetch_openai_client.sh"));
  ASSERT_EQ(fetched.exit_code, 0) << "the openai npm package is needed (scripts/fetch_openai_client.sh): " << fetched.err;
  const std::string package = fetched.out.substr(0, fetched.out.find('\n'));
  Server s("");
  const std::string image = fixture(kImage);
  auto r = run("node " + source_path("tests/serve_openai_client.cjs") + " " + package + " " + s.url("/v1") + " " + image);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json got = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(got.is_discarded()) << r.out;
  EXPECT_EQ(got["greedy"], infer(image));
  EXPECT_EQ(got["finish_reason"], "stop");
  EXPECT_GT(got["total_tokens"].get<int>(), 0);
  EXPECT_EQ(got["sampled"][0], infer(image, "--strategy sample --temperature 0.9 --seed 11"));
  EXPECT_EQ(got["sampled"][1], infer(image, "--strategy sample --temperature 0.9 --seed 12"));
  EXPECT_EQ(got["streamed"], got["greedy"]);
  EXPECT_EQ(got["models"], json::array({"emoji-tiny"}));
  EXPECT_EQ(got["error"]["status"], 404);
  EXPECT_EQ(got["error"]["type"], "invalid_request_error");
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeCli, ConcurrentRequestsShareBatchesAndGetTheirOwnCaptions) {
  Server s("--batch-wait-ms 50");
  const std::string a = fixture(kImage), b = fixture(kOther);
  write_text(s.dir() + "/a.json", chat(data_url(a)).dump());
  write_text(s.dir() + "/b.json", chat(data_url(b)).dump());
  std::string cmd = "(";
  for (int i = 0; i < 12; ++i)
    cmd += "curl -s -H 'Content-Type: application/json' --data-binary @" + s.dir() + (i % 2 ? "/b.json" : "/a.json") +
           " " + s.url("/v1/chat/completions") + " > " + s.dir() + "/r" + std::to_string(i) + " & ";
  cmd += "wait)";
  run(cmd);
  const std::string ca = infer(a), cb = infer(b);
  for (int i = 0; i < 12; ++i) {
    json r = json::parse(clipcap::read_file(s.dir() + "/r" + std::to_string(i)), nullptr, false);
    ASSERT_FALSE(r.is_discarded()) << i;
    EXPECT_EQ(r["choices"][0]["message"]["content"], i % 2 ? cb : ca) << i;
  }
  const std::string log = s.log();
  bool shared = false;
  for (int rows = 2; rows <= 12 && !shared; ++rows)
    shared = log.find("\"batch_rows\":" + std::to_string(rows) + ",") != std::string::npos;
  EXPECT_TRUE(shared) << "no batch of more than one request:\n" << log;
}

namespace {

// A PNG whose header claims 100000 x 100000 pixels: refused from the header, never decoded.
std::string bomb_png() {
  auto crc = [](const std::string& data) {
    uint32_t c = 0xffffffffu;
    for (unsigned char ch : data) {
      c ^= ch;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
  };
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc(type + data));
  };
  const std::string ihdr = be32(100000) + be32(100000) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) +
         chunk("IEND", "");
}

}  // namespace

TEST(ServeCli, EveryBadRequestGetsItsStatusAndTheServerGoesOn) {
  Server s("--max-body-bytes 1000000 --max-tokens 64");
  const std::string image = data_url(fixture(kImage));
  const std::string text_b64 = "data:image/png;base64," + clipcap::base64_encode({'h', 'e', 'l', 'l', 'o', '!'});
  const std::string bomb = s.dir() + "/bomb.png";
  write_text(bomb, bomb_png());
  const std::string big = s.dir() + "/big.bin";
  write_text(big, std::string(2'000'000, 'x'));
  json no_image = chat(image);
  no_image["messages"][0]["content"].erase(1);
  json bad_part = chat(image);
  bad_part["messages"][0]["content"][0] = {{"type", "audio"}};
  json url_not_string = chat(image);
  url_not_string["messages"][0]["content"][1]["image_url"]["url"] = 7;
  json no_messages = chat(image);
  no_messages.erase("messages");
  json no_model = chat(image);
  no_model.erase("model");

  struct Case {
    std::string what;
    std::function<Reply()> send;
    int status;
  };
  auto chat_case = [&](const std::string& what, const std::string& body, int status) {
    return Case{what, [&s, body] { return post_json(s, "/v1/chat/completions", body); }, status};
  };
  const std::vector<Case> cases = {
      chat_case("malformed JSON", "{\"model\": ", 400),
      chat_case("an array, not an object", "[1, 2]", 400),
      chat_case("no messages", no_messages.dump(), 400),
      chat_case("no model", no_model.dump(), 400),
      chat_case("messages not an array", chat(image, {{"messages", "hi"}}).dump(), 400),
      chat_case("an unknown content type", bad_part.dump(), 400),
      chat_case("no image", no_image.dump(), 400),
      chat_case("image_url.url not a string", url_not_string.dump(), 400),
      chat_case("invalid base64", chat("data:image/png;base64,@@@@").dump(), 400),
      chat_case("not an image", chat(text_b64).dump(), 400),
      chat_case("a media type that is not an image", chat("data:text/plain;base64,aGVsbG8=").dump(), 415),
      chat_case("an http URL (no outbound fetches)", chat("http://example.com/a.png").dump(), 400),
      chat_case("a file:// URL without --allow-file-dir", chat("file://" + fixture(kImage)).dump(), 400),
      chat_case("a decompression bomb", chat(data_url(bomb)).dump(), 413),
      chat_case("an unknown model", chat(image, {{"model", "gpt-4o"}}).dump(), 404),
      chat_case("temperature out of range", chat(image, {{"temperature", 5}}).dump(), 422),
      chat_case("max_tokens over the limit", chat(image, {{"max_tokens", 100000}}).dump(), 422),
      chat_case("n = 0", chat(image, {{"n", 0}}).dump(), 422),
      chat_case("temperature of the wrong type", chat(image, {{"temperature", "hot"}}).dump(), 400),
      chat_case("stream of the wrong type", chat(image, {{"stream", "yes"}}).dump(), 400),
      // Beyond an int: undefined behaviour in a plain static_cast (UBSan, tests/fuzz).
      chat_case("max_tokens beyond an integer's range", chat(image, {{"max_tokens", 1e30}}).dump(), 400),
      chat_case("max_tokens not a whole number", chat(image, {{"max_tokens", 2.5}}).dump(), 400),
      {"a body over --max-body-bytes",
       [&] { return curl("-H 'Content-Type: application/json' --data-binary @" + big + " " + s.url("/v1/chat/completions")); },
       413},
      {"chat with a text/plain body",
       [&] { return curl("-H 'Content-Type: text/plain' --data-binary 'hello' " + s.url("/v1/chat/completions")); }, 415},
      {"captions with a JSON body",
       [&] { return curl("-H 'Content-Type: application/json' --data-binary '{}' " + s.url("/v1/captions")); }, 415},
      {"captions with an empty body",
       [&] { return curl("-H 'Content-Type: image/png' --data-binary '' " + s.url("/v1/captions")); }, 400},
      {"captions with a bad query value",
       [&] { return curl("-H 'Content-Type: image/png' --data-binary @" + fixture(kImage) + " '" +
                         s.url("/v1/captions?temperature=warm") + "'"); },
       400},
      {"an unknown endpoint", [&] { return curl(s.url("/v1/embeddings")); }, 404},
  };
  ASSERT_GE(cases.size(), 25u);
  const std::string good = chat(image).dump();
  for (const Case& c : cases) {
    Reply r = c.send();
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    json e = r.json_body();
    EXPECT_TRUE(e.contains("error") && e["error"]["message"].is_string() && !e["error"]["message"].get<std::string>().empty())
        << c.what << ": " << r.body;
    EXPECT_EQ(e["error"]["type"], c.status >= 500 ? "server_error" : "invalid_request_error") << c.what;
    Reply after = post_json(s, "/v1/chat/completions", good);
    EXPECT_EQ(after.status, 200) << "after " << c.what << ": " << after.body;
  }
  // A client that sends half a body and leaves, and one that says nothing: the server goes on.
  const std::string tcp = "/dev/tcp/127.0.0.1/" + std::to_string(s.port());
  run("bash -c 'exec 3<>" + tcp + "; printf \"POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\n"
      "Content-Type: application/json\\r\\nContent-Length: 100000\\r\\n\\r\\n{\" >&3; sleep 0.3; exec 3>&-'");
  run("bash -c 'exec 3<>" + tcp + "; sleep 0.3; exec 3>&-'");
  EXPECT_EQ(post_json(s, "/v1/chat/completions", good).status, 200);
  EXPECT_EQ(s.stop(), 0);
  // One log line per request, the refused ones included.
  const std::string log = s.log();
  EXPECT_NE(log.find("\"error\":\"body_too_large\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"error\":\"no_such_endpoint\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"error\":\"image_too_large\""), std::string::npos) << log;
}

TEST(ServeCli, SixtyFourClientsSendTwoThousandRequestsAndNoneIsLost) {
  Server s("");
  const std::string load = binary_dir() + "/bench/serve_load";
  ASSERT_TRUE(fs::exists(load)) << load << " (built with the benchmarks, CLIPCAP_BUILD_BENCH=ON)";
  auto r = run(load + " --url " + s.url("") + " --clients 64 --requests 2000 " + fixture(kImage) + " " + fixture(kOther));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json got = json::parse(r.out, nullptr, false);
  EXPECT_EQ(got["ok"], 2000) << r.out;
  EXPECT_EQ(got["failed"], 0) << r.out;
  EXPECT_GT(got["mean_batch_rows"].get<double>(), 2.0) << "concurrent requests should share batches: " << r.out;
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeCli, FileUrlsOnlyBelowTheAllowedDirectory) {
  const std::string allowed = temp_dir("serve-files");
  fs::copy_file(fixture(kImage), allowed + "/a.png");
  Server s("--allow-file-dir " + allowed);
  Reply ok = post_json(s, "/v1/chat/completions", chat("file://" + allowed + "/a.png").dump());
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json_body()["choices"][0]["message"]["content"], infer(fixture(kImage)));
  Reply outside = post_json(s, "/v1/chat/completions", chat("file://" + allowed + "/../" + fs::path(allowed).filename().string() + "/../x.png").dump());
  EXPECT_EQ(outside.status, 403) << outside.body;
  Reply elsewhere = post_json(s, "/v1/chat/completions", chat("file://" + fixture(kImage)).dump());
  EXPECT_EQ(elsewhere.status, 403) << elsewhere.body;
  EXPECT_EQ(elsewhere.json_body()["error"]["message"].get<std::string>().find(fixture(kImage)), std::string::npos)
      << "the error does not echo server paths";
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeCli, TheApiKeyIsRequiredComparedAndNeverLogged) {
  const std::string key_file = temp_dir("serve-key") + "/key";
  write_text(key_file, "sk-test-5f2d8c\n");
  Server s("--api-key-file " + key_file);
  const std::string body = chat(data_url(fixture(kImage))).dump();
  Reply none = post_json(s, "/v1/chat/completions", body);
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_EQ(none.json_body()["error"]["type"], "authentication_error");
  EXPECT_EQ(post_json(s, "/v1/chat/completions", body, "-H 'Authorization: Bearer sk-test-5f2d8d'").status, 401);
  EXPECT_EQ(post_json(s, "/v1/chat/completions", body, "-H 'Authorization: Bearer sk-test-5f2d8c'").status, 200);
  // The port is taken now: a second server says so and exits 1; an empty key file is refused.
  auto taken = run(tool("clipcap-serve") + " --model " + source_path("models/emoji-tiny") + " --port " +
                   std::to_string(s.port()));
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_NE(taken.err.find("cannot listen on 127.0.0.1:" + std::to_string(s.port())), std::string::npos) << taken.err;
  write_text(key_file + ".empty", "\n");
  auto empty = run(tool("clipcap-serve") + " --model " + source_path("models/emoji-tiny") + " --port 0 --api-key-file " +
                   key_file + ".empty");
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.err.find("the API key is empty"), std::string::npos) << empty.err;
  auto no_model = run(tool("clipcap-serve") + " --model " + key_file + " --port 0");
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.err.find(key_file), std::string::npos) << no_model.err;
  EXPECT_EQ(s.stop(), 0);
  EXPECT_EQ(s.log().find("sk-test"), std::string::npos);
}
