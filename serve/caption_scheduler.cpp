#include "serve/caption_scheduler.h"

#include <functional>
#include <map>

#include "serve/api_error.h"
#include "serve/server_metrics.h"

namespace clipcap {

void CaptionStream::push(StreamEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

bool CaptionStream::pop(StreamEvent& e, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  e = std::move(events_.front());
  events_.pop_front();
  return true;
}

struct CaptionScheduler::Job {
  CaptionRequest request;
  std::vector<ImagePayload> payloads;  // prepared, then encoded
  std::promise<Answer> promise;
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<CaptionStream> stream;
  // Filled while the batch runs.
  Answer answer;
  int remaining = 0;               // choices not finished yet
  std::vector<std::string> sent;   // per choice: the text streamed so far
  std::vector<bool> done;          // per choice: finished
  bool answered = false;
};

namespace {

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD: a character whose bytes are not all written yet

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

CaptionScheduler::CaptionScheduler(CaptionBackend& backend, SchedulerOptions opts, ServerMetrics* metrics)
    : backend_(backend), opts_(opts), metrics_(metrics) {
  worker_ = std::thread([this] { work(); });
}

CaptionScheduler::~CaptionScheduler() {
  stop();
  worker_.join();
}

void CaptionScheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

size_t CaptionScheduler::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

Ticket CaptionScheduler::submit(CaptionRequest request) {
  auto job = std::make_shared<Job>();
  for (const Image& image : request.images) job->payloads.push_back(backend_.prepare(image));
  job->request = std::move(request);
  job->request.images.clear();  // the payloads carry them from here
  if (job->request.stream) job->stream = std::make_shared<CaptionStream>();
  Ticket t{job->promise.get_future(), job->cancelled, job->stream};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw ApiError(503, "the server is shutting down", "", "shutting_down");
    if (queue_.size() >= opts_.max_queue)
      throw ApiError(429, "the server is busy (" + std::to_string(queue_.size()) + " requests waiting); retry shortly",
                     "", "queue_full");
    queue_.push_back(job);
    if (metrics_) metrics_->set_queue_depth(static_cast<int64_t>(queue_.size()));
  }
  cv_.notify_all();
  return t;
}

void CaptionScheduler::work() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> jobs;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      // The first request waits at most max_wait for others to join it.
      const auto deadline = std::chrono::steady_clock::now() + opts_.max_wait;
      auto rows = [&] {
        int n = 0;
        for (const auto& j : queue_) n += j->request.n;
        return n;
      };
      cv_.wait_until(lock, deadline, [&] { return stopping_ || rows() >= opts_.max_batch; });
      int taken = 0;
      while (!queue_.empty() && (jobs.empty() || taken + queue_.front()->request.n <= opts_.max_batch)) {
        taken += queue_.front()->request.n;
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (metrics_) metrics_->set_queue_depth(static_cast<int64_t>(queue_.size()));
    }
    run_batch(jobs);
  }
}

void CaptionScheduler::run_batch(std::vector<std::shared_ptr<Job>>& all) {
  std::vector<std::shared_ptr<Job>> jobs;
  for (auto& j : all)
    if (!*j->cancelled) jobs.push_back(j);
  if (jobs.empty()) return;
  try {
    // One CLIP pass for every image of the batch, in the backend's preferred chunks.
    std::vector<ImagePayload> prepared;
    for (auto& j : jobs)
      for (auto& p : j->payloads) prepared.push_back(std::move(p));
    std::vector<ImagePayload> encoded;
    const size_t chunk = static_cast<size_t>(std::max(1, backend_.image_batch()));
    for (size_t b = 0; b < prepared.size(); b += chunk) {
      std::vector<ImagePayload> part(std::make_move_iterator(prepared.begin() + b),
                                     std::make_move_iterator(prepared.begin() + std::min(prepared.size(), b + chunk)));
      for (auto& p : backend_.encode(std::move(part))) encoded.push_back(std::move(p));
    }
    size_t at = 0;
    for (auto& j : jobs) {
      j->payloads.assign(std::make_move_iterator(encoded.begin() + at),
                         std::make_move_iterator(encoded.begin() + at + j->payloads.size()));
      at += j->payloads.size();
    }
    // Rows (request, choice) grouped by their decoding options but the seed, which the backend
    // takes per row: a request's n samples and requests that differ only in their seed share a
    // generation batch. Each group is generated together.
    struct Row {
      Job* job;
      int choice;
      uint64_t seed;
    };
    std::map<std::string, std::pair<DecodeOptions, std::vector<Row>>> groups;
    int rows = 0;
    for (auto& j : jobs)
      for (int c = 0; c < j->request.n; ++c) {
        DecodeOptions d = j->request.choice(c);
        const uint64_t seed = d.seed;
        d.seed = 0;
        auto& g = groups[d.to_json().dump()];
        g.first = d;
        g.second.push_back({j.get(), c, seed});
        ++rows;
      }
    for (auto& j : jobs) {
      j->answer.choices.resize(static_cast<size_t>(j->request.n));
      j->answer.batch_rows = rows;
      j->remaining = j->request.n;
      j->sent.assign(static_cast<size_t>(j->request.n), "");
      j->done.assign(static_cast<size_t>(j->request.n), false);
    }
    if (metrics_) metrics_->batch(rows);
    // A choice's end answers its request at once when it was the request's last.
    auto finish = [&](Job& j, int choice, const Caption& c) {
      if (j.answered || j.done[static_cast<size_t>(choice)]) return;  // reported already
      j.done[static_cast<size_t>(choice)] = true;
      j.answer.choices[static_cast<size_t>(choice)] = c;
      if (metrics_) metrics_->tokens(c.scored_tokens);
      if (j.stream) {
        const std::string& sent = j.sent[static_cast<size_t>(choice)];
        StreamEvent e;
        e.choice = choice;
        e.delta = starts_with(c.text, sent) ? c.text.substr(sent.size()) : "";
        e.finished = true;
        e.caption = c;
        j.stream->push(std::move(e));
      }
      if (--j.remaining == 0) {
        j.answered = true;
        j.promise.set_value(j.answer);
      }
    };
    struct Observer : CaptionObserver {
      std::vector<Row>* members;
      size_t first;
      std::function<void(Job&, int, const Caption&)> finish;
      void partial(size_t i, const std::string& text) override {
        const Row& r = (*members)[first + i];
        if (!r.job->stream) return;
        std::string& sent = r.job->sent[static_cast<size_t>(r.choice)];
        // Only text that can no longer change: a growing prefix, no half-written character.
        if (text.size() <= sent.size() || !starts_with(text, sent)) return;
        if (text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0) return;
        StreamEvent e;
        e.choice = r.choice;
        e.delta = text.substr(sent.size());
        sent = text;
        r.job->stream->push(std::move(e));
      }
      void finished(size_t i, const Caption& c) override {
        const Row& r = (*members)[first + i];
        finish(*r.job, r.choice, c);
      }
    };
    const size_t per_call = static_cast<size_t>(std::max(1, backend_.caption_batch()));
    for (auto& [key, group] : groups) {
      auto& [opts, members] = group;
      for (size_t b = 0; b < members.size(); b += per_call) {
        std::vector<std::vector<const ImagePayload*>> requests;
        std::vector<uint64_t> seeds;
        const size_t e = std::min(members.size(), b + per_call);
        for (size_t i = b; i < e; ++i) {
          std::vector<const ImagePayload*> images;
          for (const auto& p : members[i].job->payloads) images.push_back(&p);
          requests.push_back(std::move(images));
          seeds.push_back(members[i].seed);
        }
        Observer observer;
        observer.members = &members;
        observer.first = b;
        observer.finish = finish;
        std::vector<Caption> captions = backend_.caption(requests, opts, &observer, seeds);
        for (size_t i = b; i < e; ++i) finish(*members[i].job, members[i].choice, captions[i - b]);  // unreported ones
      }
    }
  } catch (...) {
    for (auto& j : jobs) {
      if (j->answered) continue;
      j->answered = true;
      if (j->stream) {
        StreamEvent e;
        e.error = "captioning failed";
        j->stream->push(std::move(e));
      }
      j->promise.set_exception(std::current_exception());
    }
  }
}

}  // namespace clipcap
