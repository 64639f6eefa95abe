// Joins concurrent requests into batches: a worker thread takes the first waiting request, waits
// at most `max_wait` for more (up to `max_batch` captions), runs the CLIP forward for all their
// images at once, then generates the captions of each group of requests that share decoding
// options but the seed together (captioner batches are per option set; sampling rows draw from
// their own generators, each seeded with its request's seed, so a caption never depends on its
// batch-mates, and a request's n choices are one batch). A request is answered as
// soon as its own captions end, not when its batch does; a streamed one gets its text as the
// tokens are written. The queue is bounded: a full
// queue is a 429 for the client, a stopping scheduler a 503, never unbounded memory.
//
//   clipcap::CaptionScheduler scheduler(backend, {.max_batch = 32}, &metrics);
//   clipcap::Ticket t = scheduler.submit(std::move(request));   // ApiError 429/503 at once when refused
//   Answer a = t.answer.get();                                  // a.choices[i]: choice i's caption
//   *t.cancelled = true;                                        // the client left: skipped if not begun
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backend/caption_backend.h"
#include "serve/caption_request.h"

namespace clipcap {

class ServerMetrics;

struct SchedulerOptions {
  int max_batch = 32;                            // --max-batch: captions generated together at most
  std::chrono::milliseconds max_wait{5};         // --batch-wait-ms: how long a batch waits to fill
  size_t max_queue = 256;                        // --max-queue: requests waiting at most
};

struct Answer {
  std::vector<Caption> choices;
  int batch_rows = 0;  // captions in the batch this request was generated in
};

// A streamed request's progress: text deltas per choice as tokens are written, then each
// choice's end (or an error).
struct StreamEvent {
  int choice = 0;
  std::string delta;      // text added since the last event of this choice
  bool finished = false;  // the choice's caption is complete (in `caption`)
  Caption caption;
  std::string error;      // the batch failed: no more events
};

class CaptionStream {
 public:
  void push(StreamEvent e);
  bool pop(StreamEvent& e, std::chrono::milliseconds timeout);  // false: nothing within timeout

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> events_;
};

struct Ticket {
  std::future<Answer> answer;                    // set as soon as the request's last choice ends
  std::shared_ptr<std::atomic<bool>> cancelled;
  std::shared_ptr<CaptionStream> stream;         // for requests with stream = true
};

class CaptionScheduler {
 public:
  CaptionScheduler(CaptionBackend& backend, SchedulerOptions opts, ServerMetrics* metrics = nullptr);
  ~CaptionScheduler();  // finishes what is queued, then stops the worker

  // Queues the request (its images are prepared here, on the caller's thread).
  Ticket submit(CaptionRequest request);
  size_t depth() const;
  void stop();  // refuse new requests (503); the queued ones are still answered

 private:
  struct Job;
  void work();
  void run_batch(std::vector<std::shared_ptr<Job>>& jobs);

  CaptionBackend& backend_;
  SchedulerOptions opts_;
  ServerMetrics* metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace clipcap
