#include "serve/server_metrics.h"

#include <sstream>

namespace clipcap {

namespace {

template <size_t N>
void observe(const std::array<double, N>& bounds, std::array<int64_t, N + 1>& buckets, double x) {
  size_t i = 0;
  while (i < N && x > bounds[i]) ++i;
  ++buckets[i];
}

template <size_t N>
void histogram(std::ostringstream& out, const std::string& name, const std::array<double, N>& bounds,
               const std::array<int64_t, N + 1>& buckets, double sum) {
  int64_t cumulative = 0;
  for (size_t i = 0; i < N; ++i) {
    cumulative += buckets[i];
    out << name << "_bucket{le=\"" << bounds[i] << "\"} " << cumulative << "\n";
  }
  cumulative += buckets[N];
  out << name << "_bucket{le=\"+Inf\"} " << cumulative << "\n" << name << "_sum " << sum << "\n"
      << name << "_count " << cumulative << "\n";
}

}  // namespace

void ServerMetrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
  observe(kLatencyBounds, latency_, seconds);
  latency_sum_ += seconds;
}

void ServerMetrics::error(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_[kind];
}

void ServerMetrics::batch(int rows) {
  std::lock_guard<std::mutex> lock(mu_);
  observe(kBatchBounds, batches_, rows);
  batch_rows_ += rows;
}

void ServerMetrics::tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ += n;
}

void ServerMetrics::set_queue_depth(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_depth_ = n;
}

std::string ServerMetrics::prometheus_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  out << "# HELP clipcap_requests_total Requests answered, by endpoint and HTTP status.\n"
      << "# TYPE clipcap_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "clipcap_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  out << "# HELP clipcap_errors_total Requests that ended in an error, by kind.\n"
      << "# TYPE clipcap_errors_total counter\n";
  for (const auto& [kind, n] : errors_) out << "clipcap_errors_total{kind=\"" << kind << "\"} " << n << "\n";
  out << "# HELP clipcap_queue_depth Captions waiting for a batch.\n# TYPE clipcap_queue_depth gauge\n"
      << "clipcap_queue_depth " << queue_depth_ << "\n";
  out << "# HELP clipcap_batch_rows Captions generated together, per batch.\n# TYPE clipcap_batch_rows histogram\n";
  histogram(out, "clipcap_batch_rows", kBatchBounds, batches_, static_cast<double>(batch_rows_));
  out << "# HELP clipcap_request_seconds Time from a request's arrival to its answer.\n"
      << "# TYPE clipcap_request_seconds histogram\n";
  histogram(out, "clipcap_request_seconds", kLatencyBounds, latency_, latency_sum_);
  out << "# HELP clipcap_generated_tokens_total Tokens generated (EOS included).\n"
      << "# TYPE clipcap_generated_tokens_total counter\nclipcap_generated_tokens_total " << tokens_ << "\n";
  return out.str();
}

}  // namespace clipcap
