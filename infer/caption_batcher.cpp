#include "infer/caption_batcher.h"

#include <algorithm>

#include "common/error.h"
#include "common/progress.h"
#include "common/stopwatch.h"
#include "common/strings.h"

namespace clipcap {

namespace {
bool encoded(const ImagePayload& p) { return p.tensor.defined() || !p.bytes.empty(); }
}  // namespace

class CaptionBatcher::Impl {
 public:
  Impl(CaptionBackend& backend, const VideoCaptionOptions& opts, const std::vector<std::string>& paths,
       const std::function<void(const VideoResult&)>& on_done, Progress* progress, VideoCaptionTimings& timings)
      : backend_(backend), opts_(opts), on_done_(on_done), progress_(progress), timings_(timings),
        batch_(static_cast<size_t>(std::max(1, backend.image_batch()))),
        caption_batch_(static_cast<size_t>(std::max(1, backend.caption_batch()))), jobs_(paths.size()),
        started_(Clock::now()) {
    for (size_t i = 0; i < paths.size(); ++i) jobs_[i].path = paths[i];
  }

  void handle(FrameMessage& m) {
    Job& job = jobs_[m.video];
    if (job.done) return;  // failed earlier: the rest of its messages are dropped
    switch (m.kind) {
      case FrameMessage::Kind::kFrame: {
        const size_t sample = job.source.size();
        job.pts.push_back(m.pts_s);
        job.encoded.emplace_back();
        if (m.same_as >= 0) {
          job.source.push_back(m.same_as);
        } else {
          job.source.push_back(static_cast<int64_t>(sample));
          ++job.unique;
          pending_frames_.push_back({m.video, sample, std::move(m.payload)});
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
    std::vector<ImagePayload> encoded; // sample -> the backend's encode(); set for encoded sources
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
    ImagePayload prepared;
  };
  struct CaptionRequest {
    size_t job;
    int64_t segment;                  // -1: the whole video
    std::vector<ImagePayload> frames; // encoded, described together
  };

  // Asks for every caption whose frames are all embedded: segments in order, then the video's.
  void request_ready(size_t j) {
    Job& job = jobs_[j];
    if (job.done) return;
    while (job.requested < job.segments.size()) {
      const size_t first = job.first_sample[job.requested];
      const size_t end = first + job.segments[job.requested].frame_times.size();
      std::vector<ImagePayload> frames;
      for (size_t s = first; s < end; ++s) frames.push_back(job.encoded[job.source[s]]);
      if (std::any_of(frames.begin(), frames.end(), [](const ImagePayload& p) { return !encoded(p); })) break;
      pending_captions_.push_back({j, static_cast<int64_t>(job.requested), std::move(frames)});
      ++job.requested;
      ++job.asked;
    }
    const bool all_embedded = job.embedded == job.unique;
    if (job.ended && opts_.video_caption && !job.video_requested && all_embedded && !job.source.empty()) {
      std::vector<ImagePayload> frames;  // every distinct frame once
      for (size_t s = 0; s < job.source.size(); ++s)
        if (job.source[s] == static_cast<int64_t>(s)) frames.push_back(job.encoded[s]);
      pending_captions_.push_back({j, -1, std::move(frames)});
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
    std::vector<ImagePayload> prepared;
    for (size_t i = 0; i < n; ++i) prepared.push_back(std::move(pending_frames_[i].prepared));
    std::vector<size_t> touched;
    try {
      const auto t0 = Clock::now();
      std::vector<ImagePayload> encoded = backend_.encode(std::move(prepared));
      timings_.model_clip += seconds_since(t0);
      for (size_t i = 0; i < n; ++i) {
        Job& job = jobs_[pending_frames_[i].job];
        if (job.done) continue;
        job.encoded[pending_frames_[i].sample] = std::move(encoded[i]);
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
    std::vector<std::vector<const ImagePayload*>> requests(n);
    for (size_t i = 0; i < n; ++i)
      for (const ImagePayload& p : pending_captions_[i].frames) requests[i].push_back(&p);
    try {
      const auto t0 = Clock::now();
      const std::vector<Caption> captions = backend_.caption(requests, opts_.decoding);
      timings_.model_captions += seconds_since(t0);
      for (size_t i = 0; i < n; ++i) {
        const CaptionRequest& q = pending_captions_[i];
        Job& job = jobs_[q.job];
        if (job.done) continue;
        (q.segment < 0 ? job.video_text : job.texts[static_cast<size_t>(q.segment)]) = captions[i].text;
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
          write_video_outputs(r, opts_);
          r.outputs.insert(r.outputs.end(), job.files.begin(), job.files.end());
        } catch (const Error& e) {
          r.ok = false;
          r.error = e.what();
          r.cues.clear();
        }
      }
      job.encoded.clear();  // free the embeddings; done stays true so late messages are ignored
      job.encoded.shrink_to_fit();
      if (progress_) {
        const double secs = seconds_since(started_);
        progress_->set_note(format_number(secs > 0 ? frames_embedded_ / secs : 0.0, "%.1f") + " frames/s");
        progress_->advance(1);
      }
      on_done_(r);
    }
  }

  CaptionBackend& backend_;
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
  Clock::time_point started_;
};

CaptionBatcher::CaptionBatcher(CaptionBackend& backend, const VideoCaptionOptions& opts,
                               const std::vector<std::string>& paths,
                               const std::function<void(const VideoResult&)>& on_done, Progress* progress,
                               VideoCaptionTimings& timings)
    : impl_(std::make_unique<Impl>(backend, opts, paths, on_done, progress, timings)) {}

CaptionBatcher::~CaptionBatcher() = default;

void CaptionBatcher::handle(FrameMessage& m) { impl_->handle(m); }

void CaptionBatcher::finish() { impl_->finish(); }

}  // namespace clipcap
