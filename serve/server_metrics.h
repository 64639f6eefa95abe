// What the server counts, shown at GET /metrics in Prometheus' text format: requests by endpoint
// and status, errors by kind, the queue's depth, batch sizes, request latency and generated
// tokens (tokens/s is rate(clipcap_generated_tokens_total[1m])). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace clipcap {

class ServerMetrics {
 public:
  void request(const std::string& endpoint, int status, double seconds);
  void error(const std::string& kind);
  void batch(int rows);
  void tokens(int64_t n);
  void set_queue_depth(int64_t n);
  std::string prometheus_text() const;

 private:
  static constexpr std::array<double, 12> kLatencyBounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  static constexpr std::array<double, 8> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128};
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, int64_t> errors_;
  std::array<int64_t, kLatencyBounds.size() + 1> latency_{};
  double latency_sum_ = 0;
  std::array<int64_t, kBatchBounds.size() + 1> batches_{};
  int64_t batch_rows_ = 0;
  int64_t tokens_ = 0;
  int64_t queue_depth_ = 0;
};

}  // namespace clipcap
