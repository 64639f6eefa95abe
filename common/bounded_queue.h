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
//
// Refill::kBelowHalf: once the queue is full, producers wait until half of it is free, so they
// work in bursts and sit idle in between; waiting_producers() tells the consumer which phase it is
// in (the video pipeline gives the model every core while all readers wait).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace clipcap {

enum class Refill { kEachSlot, kBelowHalf };

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity, int producers = 1, Refill refill = Refill::kEachSlot)
      : capacity_(capacity < 1 ? 1 : capacity), producers_(producers), refill_(refill) {}

  // Blocks while full (kBelowHalf: from full until half is free); false once the queue is closed
  // (the item is dropped).
  bool push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    not_full_.wait(lock, [&] { return closed_ || has_room(); });
    --waiting_;
    if (closed_) return false;
    items_.push_back(std::move(item));
    if (items_.size() >= capacity_ && refill_ == Refill::kBelowHalf) draining_ = true;
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

  // Producers blocked in push() now.
  int waiting_producers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
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
  bool has_room() const { return draining_ ? 2 * items_.size() <= capacity_ : items_.size() < capacity_; }
  std::optional<T> take() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    if (!draining_) {
      not_full_.notify_one();
    } else if (has_room()) {
      draining_ = false;
      not_full_.notify_all();
    }
    return item;
  }

  const size_t capacity_;
  int producers_;
  const Refill refill_;
  std::deque<T> items_;
  bool closed_ = false, draining_ = false;
  int waiting_ = 0;
  mutable std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
};

}  // namespace clipcap
