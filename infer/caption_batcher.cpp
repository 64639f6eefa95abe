#include "infer/caption_batcher.h"

#include <algorithm>
#include <map>

#include "common/error.h"
#include "common/progress.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "infer/video_prompts.h"

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
        started_(Clock::now()), use_prompts_(backend.reads_prompts() &&
                                            (opts.mode != CaptionMode::kFrames || !opts.prompts.main.empty())),
        record_runs_(backend.reads_prompts() || opts.mode != CaptionMode::kFrames || !opts.summary.url.empty()),
        share_captions_(!record_runs_) {
    for (size_t i = 0; i < paths.size(); ++i) jobs_[i].path = paths[i];
    if (!opts.summary.url.empty()) summarizer_ = std::make_unique<OpenAIChatClient>(opts.summary);
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
        job.reranked.emplace_back();
        job.have_text.push_back(false);
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
    bool ended = false, done = false, transient = false;
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
    std::vector<RerankScores> reranked;  // per segment
    std::vector<bool> have_text;       // per segment: its caption came back
    std::map<std::vector<int64_t>, size_t> asked_for;  // distinct frames shown -> the segment asked first
    std::map<size_t, std::vector<size_t>> sharers;     // that segment -> later segments showing the same
    nlohmann::json requests = nlohmann::json::array();  // the run record's (remote backends)
    int64_t remote_requests = 0, prompt_tokens = 0, completion_tokens = 0;
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
    std::string prompt;               // when the backend reads prompts
    int64_t record = -1;              // its entry in the job's run record
  };

  // Asks for every caption whose frames are all embedded (sliding: and whose previous caption came
  // back): segments in order, then the video's.
  void request_ready(size_t j) {
    Job& job = jobs_[j];
    if (job.done) return;
    while (job.requested < job.segments.size()) {
      const size_t k = job.requested;
      std::vector<size_t> samples;  // what this request shows
      if (opts_.mode == CaptionMode::kSliding) {
        if (k > 0 && !job.have_text[k - 1]) break;
        if (k > 0) samples.push_back(representative(job, k - 1));
        samples.push_back(representative(job, k));
      } else {
        for (size_t s = job.first_sample[k]; s < job.first_sample[k] + job.segments[k].frame_times.size(); ++s)
          samples.push_back(s);
      }
      std::vector<ImagePayload> frames;
      for (size_t s : samples) frames.push_back(job.encoded[job.source[s]]);
      if (std::any_of(frames.begin(), frames.end(), [](const ImagePayload& p) { return !encoded(p); })) break;
      if (share_captions_ && share_caption(job, k, samples)) {
        ++job.requested;
        continue;
      }
      const std::string prompt = use_prompts_ ? request_prompt(job, k, samples) : "";
      const int64_t record = record_runs_ ? static_cast<int64_t>(job.requests.size()) : -1;
      if (record_runs_) {
        nlohmann::json times = nlohmann::json::array();
        for (size_t s : samples) times.push_back(rounded_seconds(job.pts[s]));
        if (opts_.mode == CaptionMode::kGrid) {
          times = nlohmann::json::array();
          for (double t : job.segments[k].tiled_times) times.push_back(rounded_seconds(t));
        }
        nlohmann::json r = {{"segment", k}, {"frame_times", times}};
        if (use_prompts_) r["prompt"] = prompt;
        job.requests.push_back(std::move(r));
      }
      pending_captions_.push_back({j, static_cast<int64_t>(k), std::move(frames), prompt, record});
      ++job.requested;
      ++job.asked;
    }
    const bool all_embedded = job.embedded == job.unique;
    if (job.ended && wants_video_request() && !job.video_requested && all_embedded && !job.source.empty()) {
      std::vector<ImagePayload> frames;  // every distinct frame once
      for (size_t s = 0; s < job.source.size(); ++s)
        if (job.source[s] == static_cast<int64_t>(s)) frames.push_back(job.encoded[s]);
      pending_captions_.push_back({j, -1, std::move(frames), use_prompts_ ? opts_.prompts.main : ""});
      job.video_requested = true;
      ++job.asked;
    }
    check_done(j);
  }

  // A segment showing the same distinct frames as an earlier one of its video gets that one's
  // caption instead of a request of its own: the local model's caption of given frames does not
  // depend on the request (sampling seeds each request alike), and keyframe sampling of a clip
  // shorter than its keyframe interval shows one frame in every segment. False: k asks itself.
  bool share_caption(Job& job, size_t k, const std::vector<size_t>& samples) {
    std::vector<int64_t> shown;
    for (size_t s : samples) shown.push_back(job.source[s]);
    const auto [first, fresh] = job.asked_for.emplace(std::move(shown), k);
    if (fresh) return false;
    const size_t owner = first->second;
    if (job.have_text[owner])
      set_text(job, k, job.texts[owner], job.reranked[owner]);
    else
      job.sharers[owner].push_back(k);
    return true;
  }

  static void set_text(Job& job, size_t k, const std::string& text, const RerankScores& rerank) {
    job.texts[k] = text;
    job.reranked[k] = rerank;
    job.have_text[k] = true;
  }

  // A segment's middle frame: the one its cue reports, and what sliding mode shows.
  static size_t representative(const Job& job, size_t k) {
    return job.first_sample[k] + job.segments[k].frame_times.size() / 2;
  }

  std::string request_prompt(const Job& job, size_t k, const std::vector<size_t>& samples) const {
    const FrameSegment& seg = job.segments[k];
    switch (opts_.mode) {
      case CaptionMode::kGrid: return grid_prompt(opts_, seg.tiled_times, seg.end_s - seg.start_s);
      case CaptionMode::kSliding:
        return k == 0 ? sliding_first_prompt(opts_, job.pts[samples[0]])
                      : sliding_prompt(opts_, job.texts[k - 1], job.pts[samples[0]], job.pts[samples[1]]);
      default: return frame_prompt(opts_, k, seg, job.pts[representative(job, k)]);
    }
  }

  // The whole video's caption as its own request: the local model's mean of every frame. Grid
  // mode's one caption is the video's already; a summary endpoint writes it from the cues.
  bool wants_video_request() const {
    return opts_.video_caption && opts_.mode == CaptionMode::kFrames && !summarizer_;
  }

  void check_done(size_t j) {
    Job& job = jobs_[j];
    if (job.done || !job.ended || job.requested < job.segments.size()) return;
    if (wants_video_request() && !job.video_requested) return;
    if (job.answered == job.asked) job.done = true;
  }

  void fail(size_t j, const std::string& error, bool transient = false) {
    if (jobs_[j].done) return;
    jobs_[j].error = error;
    jobs_[j].transient = transient;
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
    std::vector<std::string> prompts(n);
    for (size_t i = 0; i < n; ++i) {
      for (const ImagePayload& p : pending_captions_[i].frames) requests[i].push_back(&p);
      prompts[i] = pending_captions_[i].prompt;
    }
    std::vector<size_t> touched;
    try {
      const auto t0 = Clock::now();
      const std::vector<Caption> captions = use_prompts_ ? backend_.caption_with_prompts(requests, prompts, opts_.decoding)
                                                         : backend_.caption(requests, opts_.decoding);
      timings_.model_captions += seconds_since(t0);
      for (size_t i = 0; i < n; ++i) {
        const CaptionRequest& q = pending_captions_[i];
        Job& job = jobs_[q.job];
        if (job.done) continue;
        const Caption& c = captions[i];
        if (!c.error.empty()) {  // a remote endpoint gave up on it: the video fails, a rerun retries it
          fail(q.job, job.path + ": " + c.error, /*transient=*/true);
          continue;
        }
        if (q.segment < 0) {
          job.video_text = c.text;
        } else {
          const auto k = static_cast<size_t>(q.segment);
          set_text(job, k, c.text, c.rerank);
          if (auto it = job.sharers.find(k); it != job.sharers.end())
            for (size_t later : it->second) set_text(job, later, c.text, c.rerank);
        }
        if (q.record >= 0) job.requests[static_cast<size_t>(q.record)]["answer"] = c.text;
        if (backend_.reads_prompts()) {
          ++job.remote_requests;
          job.prompt_tokens += c.prompt_tokens;
          job.completion_tokens += c.tokens;
        }
        ++job.answered;
        touched.push_back(q.job);
      }
    } catch (const BackendUnavailable&) {
      throw;  // nothing can be captioned: the run stops, and a rerun resumes
    } catch (const Error& e) {
      for (size_t i = 0; i < n; ++i) fail(pending_captions_[i].job, e.what());
    } catch (const std::exception& e) {
      for (size_t i = 0; i < n; ++i)
        fail(pending_captions_[i].job, jobs_[pending_captions_[i].job].path + ": captioning failed: " + first_line(e.what()));
    }
    pending_captions_.erase(pending_captions_.begin(), pending_captions_.begin() + static_cast<std::ptrdiff_t>(n));
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (size_t j : touched) request_ready(j);  // sliding: the next segment can go; checks done
  }

  // The summary endpoint's text for a finished video's cues (EasyAnimate's frame captions + LLM).
  void summarize(VideoResult& r, Job& job) {
    const std::string prompt = summary_prompt(opts_, r.cues, r.duration_s);
    if (record_runs_)
      r.run["summary"] = {{"endpoint", summarizer_->url()}, {"model", opts_.summary.model}, {"prompt", prompt}};
    try {
      const auto t0 = Clock::now();
      const ChatAnswer a = summarizer_->complete(nlohmann::json::array({text_part(prompt)}));
      timings_.model_captions += seconds_since(t0);
      r.video_caption = a.text;
      ++job.remote_requests;
      job.prompt_tokens += a.prompt_tokens;
      job.completion_tokens += a.completion_tokens;
    } catch (const BackendUnavailable&) {
      throw;
    } catch (const Error& e) {
      r.ok = false;
      r.transient = true;
      r.error = r.path + ": summary: " + e.what();
    }
  }

  // Hands finished videos to on_done in input order, after writing their files.
  void report_finished() {
    while (next_report_ < jobs_.size() && jobs_[next_report_].done) {
      Job& job = jobs_[next_report_++];
      VideoResult r;
      r.path = job.path;
      r.ok = job.error.empty();
      r.error = job.error;
      r.transient = job.transient;
      if (r.ok) {
        r.duration_s = job.duration_s;
        r.frames = static_cast<int64_t>(job.unique);
        std::vector<Cue> cues;
        for (size_t k = 0; k < job.segments.size(); ++k) {
          const auto& seg = job.segments[k];
          cues.push_back({seg.start_s, seg.end_s, job.pts[job.first_sample[k] + seg.frame_times.size() / 2], job.texts[k],
                          job.reranked[k]});
        }
        r.cues = merge_adjacent(cues);
        r.video_caption = opts_.mode == CaptionMode::kGrid && opts_.video_caption && !job.texts.empty() ? job.texts[0]
                                                                                                      : job.video_text;
        if (record_runs_)
          r.run = {{"mode", caption_mode_name(opts_.mode)},
                   {"backend", backend_.describe()},
                   {"prompts", video_prompt_record(opts_)},
                   {"requests", std::move(job.requests)}};
        if (summarizer_) summarize(r, job);
        r.requests = job.remote_requests;
        r.prompt_tokens = job.prompt_tokens;
        r.completion_tokens = job.completion_tokens;
      }
      if (r.ok) {
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
      job.asked_for.clear();
      job.sharers.clear();
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
  bool use_prompts_;   // requests carry the mode's filled prompt templates
  bool record_runs_;   // results carry a run record (remote backends, grid and sliding modes)
  bool share_captions_;  // segments showing the same frames share one caption (not with run records)
  std::unique_ptr<OpenAIChatClient> summarizer_;  // --summary-endpoint
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
