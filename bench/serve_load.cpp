// Load on a running clipcap-serve: C concurrent clients (each its own connection) send N requests
// in all to POST /v1/chat/completions, each with one of the given images as a data: URL (greedy,
// the model's defaults), and count every answer. Stops by itself after N requests.
//
//   build/bench/serve_load --url http://127.0.0.1:8080 --clients 64 --requests 2000 IMAGE...
//
// One JSON object on stdout: requests, ok, failed (by status), seconds, requests/s, latency
// p50/p90/p99 (ms) and the batch sizes the server reported in its metrics.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/atomic_file.h"
#include "common/base64.h"
#include "common/cli_main.h"
#include "common/error.h"

namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

int run(int argc, char** argv) {
  std::string url = "http://127.0.0.1:8080", model = "emoji-tiny";
  int clients = 64, requests = 2000;
  std::vector<std::string> images;
  CLI::App app{"load on a running clipcap-serve (see bench/README.md)"};
  app.add_option("--url", url, "the server")->capture_default_str();
  app.add_option("--model", model, "the model id to ask for")->capture_default_str();
  app.add_option("--clients", clients, "concurrent clients")->capture_default_str();
  app.add_option("--requests", requests, "requests in all")->capture_default_str();
  app.add_option("images", images, "PNG images, sent in turn")->required()->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<std::string> bodies;
  for (const auto& path : images) {
    const std::string bytes = clipcap::read_file(path);
    const std::string data = "data:image/png;base64," + clipcap::base64_encode(std::vector<uint8_t>(bytes.begin(), bytes.end()));
    bodies.push_back(nlohmann::json{{"model", model},
                                    {"messages", {{{"role", "user"},
                                                   {"content", {{{"type", "image_url"}, {"image_url", {{"url", data}}}}}}}}}}
                         .dump());
  }
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<double> latencies;
  std::map<int, int> statuses;  // 0: no answer (connection error)
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      httplib::Client client(url);
      client.set_read_timeout(120, 0);
      client.set_keep_alive(true);
      for (int i; (i = next++) < requests;) {
        const auto t0 = Clock::now();
        auto res = client.Post("/v1/chat/completions", bodies[static_cast<size_t>(i) % bodies.size()], "application/json");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        ++statuses[res ? res->status : 0];
        if (res && res->status == 200) latencies.push_back(ms);
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  httplib::Client probe(url);
  auto metrics = probe.Get("/metrics");
  nlohmann::json out = {{"url", url},
                        {"clients", clients},
                        {"requests", requests},
                        {"ok", statuses[200]},
                        {"failed", requests - statuses[200]},
                        {"seconds", seconds},
                        {"requests_per_s", static_cast<double>(statuses[200]) / seconds},
                        {"p50_ms", percentile(latencies, 50)},
                        {"p90_ms", percentile(latencies, 90)},
                        {"p99_ms", percentile(latencies, 99)}};
  nlohmann::json by_status = nlohmann::json::object();
  for (const auto& [status, n] : statuses) by_status[std::to_string(status)] = n;
  out["statuses"] = by_status;
  if (metrics && metrics->status == 200) {
    // The mean batch from the server's own histogram: clipcap_batch_rows_sum / _count.
    auto value = [&](const std::string& name) {
      const size_t at = metrics->body.find("\n" + name + " ");
      return at == std::string::npos ? 0.0 : std::stod(metrics->body.substr(at + name.size() + 2));
    };
    const double count = value("clipcap_batch_rows_count");
    out["mean_batch_rows"] = count > 0 ? value("clipcap_batch_rows_sum") / count : 0.0;
  }
  std::cerr << "serve_load: " << out["ok"] << "/" << requests << " ok in " << seconds << " s, " << out["requests_per_s"]
            << " req/s, p50 " << out["p50_ms"] << " ms, p99 " << out["p99_ms"] << " ms\n";
  std::cout << out.dump() << std::endl;
  return out["failed"].get<int>() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main("serve_load", [&] { return run(argc, argv); });
}
