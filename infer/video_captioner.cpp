#include "infer/video_captioner.h"

#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/progress.h"
#include "infer/caption_json_writer.h"
#include "infer/frame_prefetcher.h"
#include "infer/frame_sampler.h"
#include "infer/srt_writer.h"
#include "infer/vtt_writer.h"
#include "model/captioner.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

// A blocking FIFO with a size limit; close() wakes everyone (push then fails, pop drains first).
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t limit) : limit_(limit) {}
  bool push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < limit_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }
  bool pop(T& item) {  // blocks; false once closed and drained
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    return take(item);
  }
  bool try_pop(T& item) {
    std::lock_guard<std::mutex> lock(mu_);
    return take(item);
  }
  bool closed() {  // no more pushes will come (items may still wait)
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  bool take(T& item) {
    if (items_.empty()) return false;
    item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  size_t limit_;
  std::deque<T> items_;
  bool closed_ = false;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
};

// What the decoding thread tells the model thread about each video, in this order: each segment's
// sampled frames followed by the segment itself (its end is known only then for scenes), then the
// end of the video; or, at any point, why it failed.
struct FrameMessage {
  enum class Kind { kFrame, kSegment, kEnd, kFailed } kind = Kind::kFrame;
  size_t video = 0;
  double pts_s = 0;                 // kFrame
  int64_t same_as = -1;             // kFrame: an earlier sample (frame message) of the same decoded frame
  torch::Tensor pixels;             // kFrame, unless same_as >= 0: (3, H, W)
  FrameSegment segment;             // kSegment: its frames are the last frame_times.size() samples
  double duration_s = 0;            // kEnd
  std::vector<std::string> files;   // kEnd: frame JPEGs written
  std::string error;                // kFailed
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Progress::set_note puts frames/s at the end of the progress line. It is new in common/progress.h;
// with a progress.h from before it this still compiles and the note is left out.
template <typename P>
auto show_note(P& progress, const std::string& note, int) -> decltype(progress.set_note(note), void()) {
  progress.set_note(note);
}
template <typename P>
void show_note(P&, const std::string&, long) {}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

// Frames kept per scene while its end is unknown: bounded by memory (decoded frames are ~1.5
// bytes per pixel) and by kMaxSceneFrames.
constexpr size_t kMaxSceneFrames = 64;
constexpr double kSceneFrameBudgetBytes = 256.0 * 1024 * 1024;

// --decode-threads 0 (the default) is clipcap's choice, measured on 2 cores (bench/README.md):
// one thread for planned frames (-N, --every: a few seeks, and the model wants the other cores;
// FFmpeg's own choice, a thread per core, made -N 60 on a 720p video 23% slower), and half the cores
// but at least 2 for --scenes, which decodes every frame and is bound by that (2 instead of 1:
// 14% faster).
VideoDecoderOptions decoder_options(const VideoCaptionOptions& opts) {
  VideoDecoderOptions d = opts.decoder;
  if (d.threads == 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    d.threads = opts.sampling == Sampling::kScenes ? std::max(2, cores / 2) : 1;
  }
  return d;
}

// The decoding thread's work for one video: decode, pick the frames, send them preprocessed.
class VideoReader {
 public:
  VideoReader(const VideoCaptionOptions& opts, const ImageProcessor& processor, BoundedQueue<FrameMessage>& queue,
              VideoCaptionTimings& timings)
      : opts_(opts), processor_(processor), queue_(queue), timings_(timings) {}

  // false when the queue was closed (the model side stopped).
  bool read(size_t index, const std::string& path) {
    const auto started = Clock::now();
    const double frames_before = timings_.reader_frames, blocked_before = timings_.reader_blocked;
    struct Account {  // everything not spent on frames or blocked counts as decoding
      VideoReader& r;
      Clock::time_point t0;
      double f0, b0;
      int64_t* decoded = nullptr;
      const VideoDecoder* video = nullptr;
      ~Account() {
        r.timings_.reader_decode += seconds_since(t0) - (r.timings_.reader_frames - f0) - (r.timings_.reader_blocked - b0);
        if (video) r.timings_.frames_decoded += video->frames_decoded();
      }
    } account{*this, started, frames_before, blocked_before};
    VideoDecoder video(path, decoder_options(opts_));
    account.video = &video;
    index_ = index;
    sample_ = 0;
    segments_ = 0;
    last_pts_ = -1;
    last_sample_ = -1;
    files_.clear();
    frames_dir_.clear();
    if (opts_.keep_frames) frames_dir_ = prepare_frames_dir(output_stem(path, opts_.out_dir) + "_captioning_frames");
    double duration = video.info().duration_s;
    const bool sent = opts_.sampling == Sampling::kScenes ? read_scenes(video, duration) : read_planned(video, duration);
    if (!sent) return false;
    FrameMessage end;
    end.kind = FrameMessage::Kind::kEnd;
    end.video = index;
    end.duration_s = duration;
    end.files = std::move(files_);
    return push(std::move(end));
  }

 private:
  // Uniform / every: the frame times are known up front; seek to each.
  // Frames far apart are each decoded from their own keyframe: then a second reader (its own
  // decoder and thread) takes every other one, and the decoding work splits in two.
  bool read_planned(VideoDecoder& video, double duration) {
    const auto segments = opts_.sampling == Sampling::kUniform ? uniform_segments(duration, opts_.num_frames)
                                                               : every_segments(duration, opts_.every_s);
    // Called when the stream ended before t (frame_at handles a video without any frame).
    const EndCheck check = [duration](const VideoDecoder& v, double t) {
      if (!v.has_frame()) truncated_at(v, t, duration);  // a seek past the data: no frame at all
      check_not_truncated(v, t, duration);
    };
    std::unique_ptr<FramePrefetcher> second;
    if (opts_.planned_readers > 1 && segments.size() >= 4 &&
        duration / static_cast<double>(segments.size()) >= opts_.decoder.seek_min_gap_s) {
      std::vector<double> odd;
      for (size_t j = 1; j < segments.size(); j += 2) odd.push_back(segments[j].frame_times[0]);
      second = std::make_unique<FramePrefetcher>(video.info().path, decoder_options(opts_), std::move(odd), check);
    }
    struct CountSecond {  // its decoded frames join the reader's count, however this returns
      VideoReader& r;
      const std::unique_ptr<FramePrefetcher>& p;
      ~CountSecond() {
        if (p) r.timings_.frames_decoded += p->frames_decoded();
      }
    } count_second{*this, second};
    for (size_t j = 0; j < segments.size(); ++j) {
      const VideoFrame frame = second && j % 2 == 1 ? second->next()
                                                    : frame_at(video, segments[j].frame_times[0], j == 0, check);
      if (!send(frame, static_cast<int64_t>(j)) || !send_segment(segments[j])) return false;
    }
    return true;
  }

  // Scenes: one pass; each scene's frames are kept evenly spread until its end is known.
  bool read_scenes(VideoDecoder& video, double& duration) {
    const VideoInfo& info = video.info();
    SceneDetector detector(opts_.scenes);
    const auto [aw, ah] = analysis_size(info.width, info.height, opts_.scenes.analysis_long_side);
    const bool swap = info.rotation == 90 || info.rotation == 270;  // rgb_scaled() is not rotated
    const double frame_bytes = 1.5 * static_cast<double>(info.width * info.height);
    const size_t keep = std::clamp<size_t>(static_cast<size_t>(kSceneFrameBudgetBytes / frame_bytes), 8, kMaxSceneFrames);
    EvenSampler<VideoFrame> scene(keep);
    double scene_start = 0, frames_end = 0, frame_dur = 0;
    while (video.next()) {
      const bool cut = detector.add_frame(video.rgb_scaled(swap ? ah : aw, swap ? aw : ah), video.pts_s());
      if (cut && detector.scene_starts().size() > 1) {
        if (!send_scene(scene, scene_start, video.pts_s())) return false;
        scene.clear();
        scene_start = video.pts_s();
      }
      scene.add(video.frame());
      frame_dur = video.frame_duration_s();
      frames_end = video.pts_s() + frame_dur;
    }
    if (detector.frame_times().empty()) throw Error(info.path + ": no decodable video frames");
    if (frames_end < duration - std::max(0.05, 2 * frame_dur)) truncated(video, frames_end, duration);
    if (scene_start >= duration) duration = frames_end;  // the container's duration is short
    return send_scene(scene, scene_start, duration);
  }

  bool send_scene(const EvenSampler<VideoFrame>& scene, double start, double end) {
    FrameSegment seg;
    seg.start_s = start;
    seg.end_s = end;
    const auto picked = scene.pick(static_cast<size_t>(opts_.scene_frames));
    for (size_t k = 0; k < picked.size(); ++k) {
      seg.frame_times.push_back(picked[k]->pts_s);
      if (!send(*picked[k], k == picked.size() / 2 ? segments_ : -1)) return false;
    }
    return send_segment(seg);
  }

  bool send_segment(const FrameSegment& seg) {
    FrameMessage m;
    m.kind = FrameMessage::Kind::kSegment;
    m.video = index_;
    m.segment = seg;
    ++segments_;
    return push(std::move(m));
  }

  // One sampled frame to the model side; shown_as >= 0: it is that segment's --frames picture.
  bool send(const VideoFrame& frame, int64_t shown_as) {
    const auto t0 = Clock::now();
    FrameMessage m;
    m.video = index_;
    m.pts_s = frame.pts_s;
    const int64_t sample = sample_++;
    if (last_sample_ >= 0 && frame.pts_s == last_pts_) {
      m.same_as = last_sample_;
    } else {
      last_rgb_ = frame.rgb();
      m.pixels = processor_.preprocess(last_rgb_);  // (3, H, W)
      last_pts_ = frame.pts_s;
      last_sample_ = sample;
    }
    if (shown_as >= 0 && !frames_dir_.empty()) {
      char name[32];
      std::snprintf(name, sizeof name, "/frame_%04lld.jpg", static_cast<long long>(shown_as));
      write_jpeg(frames_dir_ + name, last_rgb_);
      files_.push_back(frames_dir_ + name);
    }
    timings_.reader_frames += seconds_since(t0);
    return push(std::move(m));
  }

  bool push(FrameMessage m) {
    const auto t0 = Clock::now();
    const bool ok = queue_.push(std::move(m));
    timings_.reader_blocked += seconds_since(t0);
    return ok;
  }

  // advance_to(t) ran out of frames: fine when t falls inside the last frame, else truncated.
  static void check_not_truncated(const VideoDecoder& video, double t, double duration) {
    const double end = video.pts_s() + video.frame_duration_s();
    const double tolerance = std::max(1e-3, 0.5 * video.frame_duration_s());
    if (t > end + tolerance) truncated(video, end, duration);
  }

  [[noreturn]] static void truncated_at(const VideoDecoder& video, double t, double duration) {
    throw Error(video.info().path + ": truncated or damaged: no video frame at " + seconds_text(t) +
                ", the container says " + seconds_text(duration) + read_error_suffix(video));
  }

  static std::string read_error_suffix(const VideoDecoder& video) {
    return video.read_error().empty() ? "" : " (" + video.read_error() + ")";
  }

  [[noreturn]] static void truncated(const VideoDecoder& video, double frames_end, double duration) {
    const std::string why = read_error_suffix(video);
    throw Error(video.info().path + ": truncated or damaged: video frames end at " + seconds_text(frames_end) +
                ", the container says " + seconds_text(duration) + why);
  }

  static std::string prepare_frames_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir + ": cannot create the frames directory (" + ec.message() + ")");
    // Frames of an earlier run with more segments would otherwise look like part of this one.
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("frame_", 0) == 0 && e.path().extension() == ".jpg") fs::remove(e.path(), ec);
    }
    return dir;
  }

  const VideoCaptionOptions& opts_;
  const ImageProcessor& processor_;
  BoundedQueue<FrameMessage>& queue_;
  VideoCaptionTimings& timings_;
  size_t index_ = 0;
  int64_t sample_ = 0, segments_ = 0;
  double last_pts_ = -1;
  int64_t last_sample_ = -1;
  Image last_rgb_;
  std::string frames_dir_;
  std::vector<std::string> files_;
};

void write_outputs(VideoResult& r, const VideoCaptionOptions& opts) {
  const std::string stem = output_stem(r.path, opts.out_dir);
  if (!opts.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(opts.out_dir, ec);
    if (ec) throw Error(opts.out_dir + ": cannot create the output directory (" + ec.message() + ")");
  }
  if (opts.write_srt) write_srt(stem + "_caption.srt", r.cues), r.outputs.push_back(stem + "_caption.srt");
  if (opts.write_vtt) write_vtt(stem + "_caption.vtt", r.cues), r.outputs.push_back(stem + "_caption.vtt");
  if (opts.write_json) write_caption_json(stem + "_caption.json", r.cues), r.outputs.push_back(stem + "_caption.json");
  if (opts.video_caption) {
    write_file_atomic(stem + "_video_caption.txt", one_line(r.video_caption) + "\n");
    r.outputs.push_back(stem + "_video_caption.txt");
  }
}

// The model thread's side: frames -> CLIP embeddings -> one caption per segment (the mean
// embedding of its frames) and per video -> results in input order. Only full batches run while
// frames keep coming (a batch of 1 costs nearly as much as a batch of 16); the rest at the end.
class ModelSide {
 public:
  ModelSide(Captioner& captioner, const VideoCaptionOptions& opts, const std::vector<std::string>& paths,
            const std::function<void(const VideoResult&)>& on_done, Progress* progress, VideoCaptionTimings& timings)
      : captioner_(captioner), opts_(opts), on_done_(on_done), progress_(progress), timings_(timings),
        batch_(static_cast<size_t>(opts.batch_size)),
        caption_batch_(static_cast<size_t>(opts.caption_batch)), jobs_(paths.size()), started_(std::chrono::steady_clock::now()) {
    for (size_t i = 0; i < paths.size(); ++i) jobs_[i].path = paths[i];
  }

  void handle(FrameMessage& m) {
    Job& job = jobs_[m.video];
    if (job.done) return;  // failed earlier: the rest of its messages are dropped
    switch (m.kind) {
      case FrameMessage::Kind::kFrame: {
        const size_t sample = job.source.size();
        job.pts.push_back(m.pts_s);
        job.emb.emplace_back();
        if (m.same_as >= 0) {
          job.source.push_back(m.same_as);
        } else {
          job.source.push_back(static_cast<int64_t>(sample));
          ++job.unique;
          pending_frames_.push_back({m.video, sample, std::move(m.pixels)});
        }
        break;
      }
      case FrameMessage::Kind::kSegment:
        job.first_sample.push_back(job.source.size() - m.segment.frame_times.size());
        job.segments.push_back(std::move(m.segment));
        job.texts.emplace_back();
        request_ready(m.video);
        break;
      case FrameMessage::Kind::kEnd:
        job.ended = true;
        job.duration_s = m.duration_s;
        job.files = std::move(m.files);
        request_ready(m.video);
        break;
      case FrameMessage::Kind::kFailed:
        fail(m.video, m.error);
        break;
    }
    if (pending_frames_.size() >= batch_) embed(batch_);
    while (pending_captions_.size() >= caption_batch_) caption(caption_batch_);
    report_finished();
  }

  void finish() {  // no more messages: run what is left
    while (!pending_frames_.empty()) embed(batch_);
    while (!pending_captions_.empty()) caption(caption_batch_);
    report_finished();
  }

 private:
  struct Job {
    std::string path;
    bool ended = false, done = false;
    std::string error;
    double duration_s = 0;
    std::vector<FrameSegment> segments;
    std::vector<size_t> first_sample;  // segment -> its first sample
    std::vector<int64_t> source;       // sample -> the sample whose embedding it uses
    std::vector<double> pts;           // sample -> frame time
    std::vector<torch::Tensor> emb;    // sample -> (Dc), defined for embedded sources
    size_t unique = 0, embedded = 0;   // distinct frames received / embedded
    size_t requested = 0;              // segments whose caption was asked for (in order)
    bool video_requested = false;
    size_t asked = 0, answered = 0;
    std::vector<std::string> texts;    // per segment
    std::string video_text;
    std::vector<std::string> files;
  };
  struct PendingFrame {
    size_t job, sample;
    torch::Tensor pixels;
  };
  struct CaptionRequest {
    size_t job;
    int64_t segment;          // -1: the whole video
    torch::Tensor embedding;  // (Dc)
  };

  // Asks for every caption whose frames are all embedded: segments in order, then the video's.
  void request_ready(size_t j) {
    Job& job = jobs_[j];
    if (job.done) return;
    while (job.requested < job.segments.size()) {
      const size_t first = job.first_sample[job.requested];
      const size_t end = first + job.segments[job.requested].frame_times.size();
      std::vector<torch::Tensor> rows;
      for (size_t s = first; s < end; ++s) rows.push_back(job.emb[job.source[s]]);
      if (std::any_of(rows.begin(), rows.end(), [](const torch::Tensor& t) { return !t.defined(); })) break;
      pending_captions_.push_back({j, static_cast<int64_t>(job.requested), torch::stack(rows).mean(0)});  // (Dc)
      ++job.requested;
      ++job.asked;
    }
    const bool all_embedded = job.embedded == job.unique;
    if (job.ended && opts_.video_caption && !job.video_requested && all_embedded && !job.source.empty()) {
      std::vector<torch::Tensor> rows;  // every distinct frame once
      for (size_t s = 0; s < job.source.size(); ++s)
        if (job.source[s] == static_cast<int64_t>(s)) rows.push_back(job.emb[s]);
      pending_captions_.push_back({j, -1, torch::stack(rows).mean(0)});
      job.video_requested = true;
      ++job.asked;
    }
    check_done(j);
  }

  void check_done(size_t j) {
    Job& job = jobs_[j];
    if (job.done || !job.ended || job.requested < job.segments.size()) return;
    if (opts_.video_caption && !job.video_requested) return;
    if (job.answered == job.asked) job.done = true;
  }

  void fail(size_t j, const std::string& error) {
    if (jobs_[j].done) return;
    jobs_[j].error = error;
    jobs_[j].done = true;
  }

  void embed(size_t n) {
    n = std::min(n, pending_frames_.size());
    std::vector<torch::Tensor> px;
    for (size_t i = 0; i < n; ++i) px.push_back(pending_frames_[i].pixels);
    std::vector<size_t> touched;
    try {
      const auto t0 = Clock::now();
      torch::Tensor emb = captioner_.embed_images(torch::stack(px));  // (n, Dc)
      timings_.model_clip += seconds_since(t0);
      for (size_t i = 0; i < n; ++i) {
        Job& job = jobs_[pending_frames_[i].job];
        if (job.done) continue;
        job.emb[pending_frames_[i].sample] = emb[static_cast<int64_t>(i)].clone();
        ++job.embedded;
        ++frames_embedded_;
        touched.push_back(pending_frames_[i].job);
      }
    } catch (const std::exception& e) {
      for (size_t i = 0; i < n; ++i)
        fail(pending_frames_[i].job, jobs_[pending_frames_[i].job].path + ": embedding failed: " + first_line(e.what()));
    }
    pending_frames_.erase(pending_frames_.begin(), pending_frames_.begin() + static_cast<std::ptrdiff_t>(n));
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (size_t j : touched) request_ready(j);
  }

  void caption(size_t n) {
    n = std::min(n, pending_captions_.size());
    std::vector<torch::Tensor> rows;
    for (size_t i = 0; i < n; ++i) rows.push_back(pending_captions_[i].embedding);
    try {
      const auto t0 = Clock::now();
      auto texts = captioner_.caption_embeddings(torch::stack(rows), opts_.decoding);  // (n, Dc) in
      timings_.model_captions += seconds_since(t0);
      for (size_t i = 0; i < n; ++i) {
        const CaptionRequest& q = pending_captions_[i];
        Job& job = jobs_[q.job];
        if (job.done) continue;
        (q.segment < 0 ? job.video_text : job.texts[static_cast<size_t>(q.segment)]) = texts[i];
        ++job.answered;
        check_done(q.job);
      }
    } catch (const Error& e) {
      for (size_t i = 0; i < n; ++i) fail(pending_captions_[i].job, e.what());
    } catch (const std::exception& e) {
      for (size_t i = 0; i < n; ++i)
        fail(pending_captions_[i].job, jobs_[pending_captions_[i].job].path + ": captioning failed: " + first_line(e.what()));
    }
    pending_captions_.erase(pending_captions_.begin(), pending_captions_.begin() + static_cast<std::ptrdiff_t>(n));
  }

  // Hands finished videos to on_done in input order, after writing their files.
  void report_finished() {
    while (next_report_ < jobs_.size() && jobs_[next_report_].done) {
      Job& job = jobs_[next_report_++];
      VideoResult r;
      r.path = job.path;
      r.ok = job.error.empty();
      r.error = job.error;
      if (r.ok) {
        r.duration_s = job.duration_s;
        r.frames = static_cast<int64_t>(job.unique);
        std::vector<Cue> cues;
        for (size_t k = 0; k < job.segments.size(); ++k) {
          const auto& seg = job.segments[k];
          cues.push_back({seg.start_s, seg.end_s, job.pts[job.first_sample[k] + seg.frame_times.size() / 2], job.texts[k]});
        }
        r.cues = merge_adjacent(cues);
        r.video_caption = job.video_text;
        try {
          write_outputs(r, opts_);
          r.outputs.insert(r.outputs.end(), job.files.begin(), job.files.end());
        } catch (const Error& e) {
          r.ok = false;
          r.error = e.what();
          r.cues.clear();
        }
      }
      job.emb.clear();  // free the embeddings; done stays true so late messages are ignored
      job.emb.shrink_to_fit();
      if (progress_) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        char note[48];
        std::snprintf(note, sizeof note, "%.1f frames/s", secs > 0 ? frames_embedded_ / secs : 0.0);
        show_note(*progress_, note, 0);
        progress_->advance(1);
      }
      on_done_(r);
    }
  }

  Captioner& captioner_;
  const VideoCaptionOptions& opts_;
  const std::function<void(const VideoResult&)>& on_done_;
  Progress* progress_;
  VideoCaptionTimings& timings_;
  size_t batch_, caption_batch_;
  std::vector<Job> jobs_;
  std::vector<PendingFrame> pending_frames_;
  std::vector<CaptionRequest> pending_captions_;
  size_t next_report_ = 0;
  int64_t frames_embedded_ = 0;
  std::chrono::steady_clock::time_point started_;
};

// at::get_num_threads() - 1 (at least 1) for its lifetime, then back. Thread counts are per
// process in libtorch; the model runs on this (the calling) thread.
class ModelThreadsWhileDecoding {
 public:
  ModelThreadsWhileDecoding() : all_(at::get_num_threads()) {
    if (all_ > 1) at::set_num_threads(all_ - 1);
  }
  ~ModelThreadsWhileDecoding() { restore(); }
  void restore() {
    if (all_ > 1 && at::get_num_threads() != all_) at::set_num_threads(all_);
  }
  ModelThreadsWhileDecoding(const ModelThreadsWhileDecoding&) = delete;
  ModelThreadsWhileDecoding& operator=(const ModelThreadsWhileDecoding&) = delete;

 private:
  int all_;
};

}  // namespace

void VideoCaptionOptions::validate() const {
  if (num_frames < 1) throw Error("-N/--num-frames must be >= 1, got " + std::to_string(num_frames));
  if (!(every_s > 0)) throw Error("--every must be > 0 seconds, got " + std::to_string(every_s));
  if (scene_frames < 1) throw Error("--scene-frames must be >= 1, got " + std::to_string(scene_frames));
  if (batch_size < 1) throw Error("--batch-size must be >= 1, got " + std::to_string(batch_size));
  if (caption_batch < 1) throw Error("--caption-batch must be >= 1, got " + std::to_string(caption_batch));
  if (queue_frames < 1) throw Error("the frame queue must hold at least one frame");
  if (planned_readers < 1 || planned_readers > 2)
    throw Error("planned_readers must be 1 or 2, got " + std::to_string(planned_readers));
  if (decoder.threads < 0)
    throw Error("--decode-threads must be >= 0 (0 = chosen by the sampling), got " + std::to_string(decoder.threads));
  if (!write_srt && !write_vtt && !write_json && !video_caption)
    throw Error("--formats: nothing to write (give at least one of srt, vtt, json)");
  scenes.validate();
  decoding.validate();
}

nlohmann::json VideoResult::to_json() const {
  nlohmann::json j;
  j["path"] = path;
  if (!ok) {
    j["error"] = error;
    return j;
  }
  j["duration_s"] = rounded_seconds(duration_s);
  j["frames"] = frames;
  nlohmann::json segs = nlohmann::json::array();
  for (const Cue& c : cues)
    segs.push_back({{"start_s", rounded_seconds(c.start_s)},
                    {"end_s", rounded_seconds(c.end_s)},
                    {"frame_s", rounded_seconds(c.frame_s)},
                    {"text", c.text}});
  j["segments"] = std::move(segs);
  if (!video_caption.empty()) j["video_caption"] = video_caption;
  j["outputs"] = outputs;
  return j;
}

std::string output_stem(const std::string& video_path, const std::string& out_dir) {
  const fs::path p(video_path);
  const fs::path dir = out_dir.empty() ? p.parent_path() : fs::path(out_dir);
  return (dir / p.stem()).string();
}

VideoCaptioner::VideoCaptioner(Captioner& captioner, VideoCaptionOptions opts)
    : captioner_(captioner), opts_(std::move(opts)) {
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
  BoundedQueue<FrameMessage> queue(static_cast<size_t>(opts_.queue_frames));
  std::thread reader_thread([&] {
    VideoReader reader(opts_, captioner_.processor(), queue, timings_);
    for (size_t i = 0; i < paths.size(); ++i) {
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
    queue.close();
  });
  struct JoinOnExit {  // also when on_done throws: stop the reader, then wait for it
    BoundedQueue<FrameMessage>& q;
    std::thread& t;
    ~JoinOnExit() {
      q.close();
      if (t.joinable()) t.join();
    }
  } join_on_exit{queue, reader_thread};

  ModelSide model(captioner_, opts_, paths, on_done, progress, timings_);
  {
    // While the reader decodes, it keeps a core busy: the model takes one thread fewer. libtorch's
    // threads wait for each other at every op, so one of them sharing a core with the decoder
    // slowed the whole model down (2 cores: 2 threads + decoding took 15.3 s for -N 60 on a 720p
    // video, 1 thread 14.5 s; bench/README.md). Once the reader is done, the rest runs on all.
    ModelThreadsWhileDecoding fewer_threads;
    FrameMessage m;
    while (queue.pop(m)) {
      if (queue.closed()) fewer_threads.restore();  // the reader is done; frames may still wait
      model.handle(m);
    }
  }
  model.finish();
  timings_.wall = seconds_since(started);
}

}  // namespace clipcap
