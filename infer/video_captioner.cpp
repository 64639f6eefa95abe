#include "infer/video_captioner.h"

#include <atomic>
#include <thread>

#include "common/error.h"
#include "common/runtime.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "infer/caption_batcher.h"
#include "infer/frame_reader.h"

namespace clipcap {

VideoCaptioner::VideoCaptioner(CaptionBackend& backend, VideoCaptionOptions opts)
    : backend_(backend), opts_(std::move(opts)) {
  opts_.validate();
}

VideoResult VideoCaptioner::caption(const std::string& path) {
  VideoResult out;
  caption_all({path}, [&](const VideoResult& r) { out = r; });
  return out;
}

void VideoCaptioner::caption_all(const std::vector<std::string>& paths,
                                 const std::function<void(const VideoResult&)>& on_done, Progress* progress) {
  timings_ = VideoCaptionTimings{};
  if (paths.empty()) return;
  const auto started = Clock::now();
  FrameQueue queue(static_cast<size_t>(opts_.queue_frames), 1, Refill::kBelowHalf);
  // Several videos are decoded at once (short clips are mostly start-up: open, probe, first seek);
  // each worker takes the next video in input order and the batcher reports in input order.
  const int workers = video_workers_for(opts_, paths.size());
  std::vector<VideoCaptionTimings> reader_timings(static_cast<size_t>(workers));
  std::atomic<size_t> next_video{0};
  std::atomic<int> readers_left{workers};
  const auto read_videos = [&](VideoCaptionTimings& timings) {
    struct Leave {
      std::atomic<int>& left;
      ~Leave() { --left; }
    } leave{readers_left};
    FrameReader reader(opts_, backend_, queue, timings);
    for (size_t i; (i = next_video++) < paths.size();) {
      FrameMessage failed;
      failed.kind = FrameMessage::Kind::kFailed;
      failed.video = i;
      try {
        if (!reader.read(i, paths[i])) return;
        continue;
      } catch (const Error& e) {
        failed.error = e.what();
      } catch (const std::exception& e) {  // libtorch or the standard library: keep one line
        failed.error = paths[i] + ": " + first_line(e.what());
      }
      if (!queue.push(std::move(failed))) return;
    }
  };
  std::thread reader_thread([&] {
    std::vector<std::thread> more;
    for (int w = 1; w < workers; ++w) more.emplace_back(read_videos, std::ref(reader_timings[static_cast<size_t>(w)]));
    read_videos(reader_timings[0]);
    for (auto& t : more) t.join();
    queue.close();
  });
  struct JoinOnExit {  // also when on_done throws: stop the reader, then wait for it
    FrameQueue& q;
    std::thread& t;
    ~JoinOnExit() {
      q.close();
      if (t.joinable()) t.join();
    }
  } join_on_exit{queue, reader_thread};

  CaptionBatcher batcher(backend_, opts_, paths, on_done, progress, timings_);
  {
    // While a reader decodes it keeps a core busy; once they are done, or while every reader waits
    // for room in the queue (the model is the slower side: short clips, keyframe seeks; the queue
    // refills from half, so readers work in bursts), the model runs on all cores. 200 clips at
    // -N 4 with keyframes: 30-32 s, against 43-47 s with one thread fewer as long as a reader
    // lived (bench/README.md, "Measurements behind code decisions").
    OneThreadFewer fewer_threads;
    while (std::optional<FrameMessage> m = queue.pop()) {
      if (queue.closed() || queue.waiting_producers() >= readers_left)
        fewer_threads.restore();
      else
        fewer_threads.reduce();
      batcher.handle(*m);
    }
  }
  batcher.finish();
  reader_thread.join();  // the queue closed: the readers are done (their timings are final)
  for (const auto& t : reader_timings) {
    timings_.reader_decode += t.reader_decode;
    timings_.reader_frames += t.reader_frames;
    timings_.reader_blocked += t.reader_blocked;
    timings_.frames_decoded += t.frames_decoded;
  }
  timings_.wall = seconds_since(started);
}

}  // namespace clipcap
