// A blocking FIFO with a size limit between producer threads and one consumer: what keeps image
// decoders (clipcap-data build) and video readers (clipcap-infer video) a bounded distance ahead of
// the model.
//
//   clipcap::BoundedQueue<Batch> q(/*capacity=*/4, /*producers=*/2);
//   // producers: while (auto b = make()) if (!q.push(std::move(*b))) break;   q.producer_done();
//   // consumer:  while (auto b = q.pop()) use(*b);
//   q.close();   // stop early: pushes fail from now on (producers see false and return)
//
// pop() drains what is queued before it reports the end, whether the end came from the last
// producer_done() or from close().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace clipcap {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity, int producers = 1) : capacity_(capacity < 1 ? 1 : capacity), producers_(producers) {}

  // Blocks while full; false once the queue is closed (the item is dropped).
  bool push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Blocks until an item is there; nullopt once closed and drained.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    return take();
  }

  std::optional<T> try_pop() {
    std::lock_guard<std::mutex> lock(mu_);
    return take();
  }

  // No more items will come (some may still wait to be popped).
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  // One producer is finished; after the last one the queue is closed.
  void producer_done() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--producers_ <= 0) close_locked();
  }

  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    close_locked();
  }

 private:
  void close_locked() {
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }
  std::optional<T> take() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  const size_t capacity_;
  int producers_;
  std::deque<T> items_;
  bool closed_ = false;
  mutable std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
};

}  // namespace clipcap
