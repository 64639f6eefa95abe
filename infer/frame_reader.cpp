#include "infer/frame_reader.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "infer/frame_prefetcher.h"
#include "infer/scene_detector.h"
#include "infer/video_decoder.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

std::string seconds_text(double s) { return format_number(s, "%.3f") + " s"; }

// Frames kept per scene while its end is unknown: bounded by memory (decoded frames are ~1.5
// bytes per pixel) and by kMaxSceneFrames.
constexpr size_t kMaxSceneFrames = 64;
constexpr double kSceneFrameBudgetBytes = 256.0 * 1024 * 1024;

}  // namespace

// --decode-threads 0 (the default) is clipcap's choice: one thread for planned frames (-N,
// --every: a few seeks, and the model wants the other cores; FFmpeg's own choice, a thread per
// core, was slower), and half the cores but at least 2 for --scenes, which decodes every frame and
// is bound by that. Measurements: bench/README.md, "Measurements behind code decisions".
VideoDecoderOptions decoder_options(const VideoCaptionOptions& opts) {
  VideoDecoderOptions d = opts.decoder;
  if (d.threads == 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    d.threads = opts.sampling == Sampling::kScenes ? std::max(2, cores / 2) : 1;
  }
  return d;
}

// The decoding thread's work for one video: decode, pick the frames, send them preprocessed.
class FrameReader::Impl {
 public:
  Impl(const VideoCaptionOptions& opts, const CaptionBackend& backend, FrameQueue& queue, VideoCaptionTimings& timings)
      : opts_(opts), backend_(backend), queue_(queue), timings_(timings) {}

  // false when the queue was closed (the model side stopped).
  bool read(size_t index, const std::string& path) {
    const auto started = Clock::now();
    const double frames_before = timings_.reader_frames, blocked_before = timings_.reader_blocked;
    struct Account {  // everything not spent on frames or blocked counts as decoding
      Impl& r;
      Clock::time_point t0;
      double f0, b0;
      ~Account() {
        r.timings_.reader_decode += seconds_since(t0) - (r.timings_.reader_frames - f0) - (r.timings_.reader_blocked - b0);
      }
    } account{*this, started, frames_before, blocked_before};
    VideoDecoder video(path, decoder_options(opts_));
    // Declared after `video`, so destroyed before it (a pointer to it in `account` outlived it:
    // ASan, scripts/sanitize.sh).
    struct CountFrames {
      Impl& r;
      const VideoDecoder& video;
      ~CountFrames() { r.timings_.frames_decoded += video.frames_decoded(); }
    } count_frames{*this, video};
    index_ = index;
    sample_ = 0;
    segments_ = 0;
    last_pts_ = -1;
    last_sample_ = -1;
    files_.clear();
    frames_dir_.clear();
    grid_tiles_.clear();
    grid_times_.clear();
    if (opts_.keep_frames) frames_dir_ = prepare_frames_dir(output_stem(path, opts_.out_dir) + "_captioning_frames");
    double duration = video.info().duration_s;
    const bool sent = opts_.sampling == Sampling::kScenes ? read_scenes(video, duration) : read_planned(video, duration);
    if (!sent) return false;
    if (opts_.mode == CaptionMode::kGrid && !send_grid(duration)) return false;
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
    auto segments = opts_.sampling == Sampling::kUniform ? uniform_segments(duration, opts_.num_frames)
                                                         : every_segments(duration, opts_.every_s);
    if (opts_.sample_point == SamplePoint::kMid)
      for (auto& seg : segments) seg.frame_times = {(seg.start_s + seg.end_s) / 2};
    const bool keyframes = opts_.seek == Seek::kKeyframe;
    if (keyframes) {  // only keyframes are read: look for a truncation in the index instead
      const double data_end = video.indexed_data_end_s();
      if (data_end >= 0) truncated(video, data_end, duration);
    }
    // Called when the stream ended before t (frame_at handles a video without any frame).
    const EndCheck check = [duration, keyframes](const VideoDecoder& v, double t) {
      if (!v.has_frame()) truncated_at(v, t, duration);  // a seek past the data: no frame at all
      if (!keyframes) check_not_truncated(v, t, duration);
    };
    std::unique_ptr<FramePrefetcher> second;
    if (opts_.planned_readers > 1 && segments.size() >= 4 &&
        duration / static_cast<double>(segments.size()) >= opts_.decoder.seek_min_gap_s) {
      std::vector<double> odd;
      for (size_t j = 1; j < segments.size(); j += 2) odd.push_back(segments[j].frame_times[0]);
      second = std::make_unique<FramePrefetcher>(video.info().path, decoder_options(opts_), std::move(odd), check, keyframes);
    }
    struct CountSecond {  // its decoded frames join the reader's count, however this returns
      Impl& r;
      const std::unique_ptr<FramePrefetcher>& p;
      ~CountSecond() {
        if (p) r.timings_.frames_decoded += p->frames_decoded();
      }
    } count_second{*this, second};
    for (size_t j = 0; j < segments.size(); ++j) {
      const VideoFrame frame = second && j % 2 == 1 ? second->next()
                                                    : frame_at(video, segments[j].frame_times[0], j == 0, check, keyframes);
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
    const auto picked = scene.pick(opts_.sample_point == SamplePoint::kMid ? 1 : static_cast<size_t>(opts_.scene_frames));
    for (size_t k = 0; k < picked.size(); ++k) {
      seg.frame_times.push_back(picked[k]->pts_s);
      if (!send(*picked[k], k == picked.size() / 2 ? segments_ : -1)) return false;
    }
    return send_segment(seg);
  }

  bool send_segment(const FrameSegment& seg) {
    if (opts_.mode == CaptionMode::kGrid) return true;  // one segment for the whole video, at the end
    FrameMessage m;
    m.kind = FrameMessage::Kind::kSegment;
    m.video = index_;
    m.segment = seg;
    ++segments_;
    return push(std::move(m));
  }

  // Grid mode: the segments' frames, tiled into one image, as the video's only frame and segment
  // (spanning it all); --frames keeps the grid as frame_0000.jpg.
  bool send_grid(double duration) {
    const auto t0 = Clock::now();
    FrameMessage m;
    m.video = index_;
    m.pts_s = grid_times_[grid_times_.size() / 2];
    const Image grid = tile_frames(grid_tiles_, opts_.grid);
    m.payload = backend_.prepare(grid);
    if (!frames_dir_.empty()) {
      write_jpeg(frames_dir_ + "/frame_0000.jpg", grid);
      files_.push_back(frames_dir_ + "/frame_0000.jpg");
    }
    grid_tiles_.clear();
    timings_.reader_frames += seconds_since(t0);
    if (!push(std::move(m))) return false;
    FrameSegment seg;
    seg.end_s = duration;
    seg.frame_times = {grid_times_[grid_times_.size() / 2]};
    seg.tiled_times = grid_times_;
    FrameMessage s;
    s.kind = FrameMessage::Kind::kSegment;
    s.video = index_;
    s.segment = std::move(seg);
    return push(std::move(s));
  }

  // One sampled frame to the model side; shown_as >= 0: it is that segment's --frames picture.
  // Grid mode keeps each segment's shown frame, scaled to a tile, for send_grid.
  bool send(const VideoFrame& frame, int64_t shown_as) {
    if (opts_.mode == CaptionMode::kGrid) {
      if (shown_as < 0) return true;
      const auto t0 = Clock::now();
      GridLayout one = opts_.grid;
      one.columns = 1;
      grid_tiles_.push_back(tile_frames({frame.rgb()}, one));
      grid_times_.push_back(frame.pts_s);
      timings_.reader_frames += seconds_since(t0);
      return true;
    }
    const auto t0 = Clock::now();
    FrameMessage m;
    m.video = index_;
    m.pts_s = frame.pts_s;
    const int64_t sample = sample_++;
    if (last_sample_ >= 0 && frame.pts_s == last_pts_) {
      m.same_as = last_sample_;
    } else {
      last_rgb_ = frame.rgb();
      m.payload = backend_.prepare(last_rgb_);
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
  const CaptionBackend& backend_;
  FrameQueue& queue_;
  VideoCaptionTimings& timings_;
  size_t index_ = 0;
  int64_t sample_ = 0, segments_ = 0;
  double last_pts_ = -1;
  int64_t last_sample_ = -1;
  Image last_rgb_;
  std::string frames_dir_;
  std::vector<std::string> files_;
  std::vector<Image> grid_tiles_;  // grid mode: the frames so far, at tile size
  std::vector<double> grid_times_;
};

FrameReader::FrameReader(const VideoCaptionOptions& opts, const CaptionBackend& backend, FrameQueue& queue,
                         VideoCaptionTimings& timings)
    : impl_(std::make_unique<Impl>(opts, backend, queue, timings)) {}

FrameReader::~FrameReader() = default;

bool FrameReader::read(size_t index, const std::string& path) { return impl_->read(index, path); }

}  // namespace clipcap
