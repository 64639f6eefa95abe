#include "infer/video_decoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>

#include "common/error.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

constexpr double kPtsTolerance = 1e-6;  // seconds: a frame at 0.99999999 s counts as at 1 s

struct FormatClose {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

void silence_libav_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("CLIPCAP_AV_LOG");
    av_log_set_level(env && *env && std::string(env) != "0" ? AV_LOG_WARNING : AV_LOG_QUIET);
  });
}

bool is_still_image_demuxer(const std::string& name) {
  return name == "image2" || (name.size() > 5 && name.compare(name.size() - 5, 5, "_pipe") == 0);
}

int64_t frame_duration_ticks(const AVFrame* f) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
  return f->duration;
#else
  return f->pkt_duration;
#endif
}

const uint8_t* display_matrix(const AVStream* st) {
#if LIBAVFORMAT_VERSION_MAJOR >= 61
  const AVPacketSideData* sd = av_packet_side_data_get(st->codecpar->coded_side_data, st->codecpar->nb_coded_side_data,
                                                       AV_PKT_DATA_DISPLAYMATRIX);
  return sd && sd->size >= 9 * sizeof(int32_t) ? sd->data : nullptr;
#else
  size_t size = 0;
  const uint8_t* data = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  return data && size >= 9 * sizeof(int32_t) ? data : nullptr;
#endif
}

// Clockwise degrees a player turns the decoded picture by (as ffmpeg's autorotate).
int upright_rotation(const AVStream* st) {
  const uint8_t* m = display_matrix(st);
  if (!m) return 0;
  double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(m));  // counter-clockwise
  if (std::isnan(ccw)) return 0;
  long cw = std::lround(-ccw / 90.0) * 90;
  return static_cast<int>(((cw % 360) + 360) % 360);
}

// Deprecated yuvj* formats are their yuv* twins with full range; swscale warns about them.
AVPixelFormat plain_format(AVPixelFormat f, bool* full_range) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full_range = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full_range = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full_range = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full_range = true; return AV_PIX_FMT_YUV440P;
    default: return f;
  }
}

constexpr int kFullSizeFlags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT;

// f as w x h RGB24; *cache is an swscale context reused when it fits (sws_getCachedContext).
Image frame_to_rgb(const AVFrame* f, int64_t w, int64_t h, int flags, SwsContext** cache, const std::string& path) {
  bool full_range = f->color_range == AVCOL_RANGE_JPEG;
  AVPixelFormat src_fmt = plain_format(static_cast<AVPixelFormat>(f->format), &full_range);
  *cache = sws_getCachedContext(*cache, f->width, f->height, src_fmt, static_cast<int>(w), static_cast<int>(h),
                                AV_PIX_FMT_RGB24, flags, nullptr, nullptr, nullptr);
  if (!*cache) {
    const char* name = av_get_pix_fmt_name(src_fmt);
    throw Error(path + ": cannot convert " + (name ? name : "?") + " frames to RGB");
  }
  // The frame's own matrix when tagged; untagged is BT.601, like the ffmpeg CLI.
  int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED || f->colorspace == AVCOL_SPC_RGB ? SWS_CS_DEFAULT : f->colorspace;
  sws_setColorspaceDetails(*cache, sws_getCoefficients(cs), full_range ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                           0, 1 << 16, 1 << 16);
  // swscale may write whole SIMD blocks: give it an aligned, padded buffer, then copy rows out.
  const int stride = static_cast<int>((w * 3 + 63) / 64 * 64);
  std::vector<uint8_t> buf(static_cast<size_t>(stride) * (h + 1) + 64);
  uint8_t* dst[4] = {buf.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {stride, 0, 0, 0};
  sws_scale(*cache, f->data, f->linesize, 0, f->height, dst, dst_stride);
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w * h * 3));
  for (int64_t y = 0; y < h; ++y) std::memcpy(img.row(y), buf.data() + y * stride, static_cast<size_t>(w * 3));
  return img;
}

}  // namespace

Image rotate_clockwise(const Image& img, int degrees) {
  degrees = ((degrees % 360) + 360) % 360;
  if (degrees == 0) return img;
  const int64_t w = img.width, h = img.height;
  Image out;
  out.width = degrees == 180 ? w : h;
  out.height = degrees == 180 ? h : w;
  out.pixels.resize(img.pixels.size());
  for (int64_t y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < out.width; ++x) {
      int64_t sx, sy;  // the source pixel that lands at (x, y)
      if (degrees == 90) {
        sx = y, sy = h - 1 - x;
      } else if (degrees == 180) {
        sx = w - 1 - x, sy = h - 1 - y;
      } else {  // 270
        sx = w - 1 - y, sy = x;
      }
      std::memcpy(dst + 3 * x, img.row(sy) + 3 * sx, 3);
    }
  }
  return out;
}

struct VideoDecoder::Impl {
  VideoInfo info;
  VideoDecoderOptions opts;
  std::unique_ptr<AVFormatContext, FormatClose> fmt;
  std::unique_ptr<AVCodecContext, CodecFree> codec;
  std::unique_ptr<AVFrame, FrameFree> cur{av_frame_alloc()}, tmp{av_frame_alloc()};
  std::unique_ptr<AVPacket, PacketFree> pkt{av_packet_alloc()};
  mutable std::unique_ptr<SwsContext, SwsFree> sws;
  AVStream* st = nullptr;
  int stream_index = -1;
  double tb = 0;            // seconds per stream tick
  double origin_s = 0;      // subtracted from every stream time
  int64_t start_ticks = 0;  // where rewind() seeks
  bool draining = false, have_cur = false;
  double cur_pts = 0, cur_dur = 0;
  int64_t last_ts = AV_NOPTS_VALUE;  // previous frame's timestamp, for frames without one
  int64_t frames_out = 0, bad_packets = 0;
  double skip_before_s = -1e300;  // packets of non-reference frames earlier than this are not decoded
  std::string last_decode_error, read_error;

  Impl(const std::string& path, const VideoDecoderOptions& o) : opts(o) {
    silence_libav_once();
    info.path = path;
    std::error_code ec;
    if (!fs::exists(path, ec)) throw Error(path + ": no such file");
    if (fs::is_directory(path, ec)) throw Error(path + ": is a directory, not a video");
    if (fs::file_size(path, ec) == 0 && !ec) throw Error(path + ": empty file (0 bytes)");
    if (!cur || !tmp || !pkt) throw Error(path + ": out of memory");
    open();
    info.duration_s = stream_end_s();
    if (!(info.duration_s > 0)) throw Error(path + ": zero duration (no video frames)");
  }

  void open() {
    const std::string& path = info.path;
    AVFormatContext* raw = nullptr;
    int r = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    if (r < 0) throw Error(path + ": not a video file (" + av_error(r) + ")");
    fmt.reset(raw);
    r = avformat_find_stream_info(fmt.get(), nullptr);
    if (r < 0) throw Error(path + ": cannot read the streams (" + av_error(r) + ")");
    info.container = fmt->iformat->name;
    if (is_still_image_demuxer(info.container))
      throw Error(path + ": a still image, not a video (caption it with `clipcap-infer image`)");

    if (fmt->nb_streams == 0) throw Error(path + ": zero duration: the file holds no streams");
    stream_index = -1;
    bool has_audio = false;
    int best = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
      const AVStream* s = fmt->streams[i];
      if (s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) has_audio = true;
      if (s->codecpar->codec_type != AVMEDIA_TYPE_VIDEO || (s->disposition & AV_DISPOSITION_ATTACHED_PIC)) continue;
      if (stream_index < 0 || static_cast<int>(i) == best) stream_index = static_cast<int>(i);
    }
    if (stream_index < 0)
      throw Error(path + (has_audio ? ": no video stream (audio only)" : ": no video stream"));
    st = fmt->streams[stream_index];
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
      if (static_cast<int>(i) != stream_index) fmt->streams[i]->discard = AVDISCARD_ALL;

    const AVCodecParameters* par = st->codecpar;
    const AVCodec* decoder = avcodec_find_decoder(par->codec_id);
    if (!decoder) {
      char tag[AV_FOURCC_MAX_STRING_SIZE] = {0};
      av_fourcc_make_string(tag, par->codec_tag);
      throw Error(path + ": unsupported video codec (no decoder for '" + avcodec_get_name(par->codec_id) +
                  "', tag " + tag + ")");
    }
    codec.reset(avcodec_alloc_context3(decoder));
    if (!codec) throw Error(path + ": out of memory");
    r = avcodec_parameters_to_context(codec.get(), par);
    if (r < 0) throw Error(path + ": bad codec parameters (" + av_error(r) + ")");
    codec->thread_count = opts.threads;
    codec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    codec->pkt_timebase = st->time_base;
    r = avcodec_open2(codec.get(), decoder, nullptr);
    if (r < 0) throw Error(path + ": cannot open the " + decoder->name + " decoder (" + av_error(r) + ")");
    if (par->width <= 0 || par->height <= 0) throw Error(path + ": the video stream has no frame size");

    tb = av_q2d(st->time_base);
    if (fmt->start_time != AV_NOPTS_VALUE)
      origin_s = static_cast<double>(fmt->start_time) / AV_TIME_BASE;
    else if (st->start_time != AV_NOPTS_VALUE)
      origin_s = st->start_time * tb;
    start_ticks = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    AVRational rate = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? st->avg_frame_rate : st->r_frame_rate;
    info.frame_rate = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;
    info.rotation = upright_rotation(st);
    const bool swap = info.rotation == 90 || info.rotation == 270;
    info.width = swap ? par->height : par->width;
    info.height = swap ? par->width : par->height;
    info.codec = avcodec_get_name(par->codec_id);
    draining = have_cur = false;
    last_ts = AV_NOPTS_VALUE;
  }

  double nominal_frame_s() const { return info.frame_rate > 0 ? 1.0 / info.frame_rate : 0.0; }

  // The video's end, relative to the origin: the stream's stored duration, else read the tail.
  double stream_end_s() {
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
      double stream_start = st->start_time != AV_NOPTS_VALUE ? st->start_time * tb : origin_s;
      return stream_start + st->duration * tb - origin_s;
    }
    double end = -1;
    if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) {
      // Jump to the last keyframe before the container's idea of the end, read what is left.
      int64_t guess = fmt->duration + (fmt->start_time != AV_NOPTS_VALUE ? fmt->start_time : 0);
      if (av_seek_frame(fmt.get(), -1, guess, AVSEEK_FLAG_BACKWARD) >= 0) end = scan_packets_end();
    }
    if (end < 0) {
      seek_start();
      end = scan_packets_end();
    }
    seek_start();
    if (end < 0) return 0.0;
    end -= origin_s;
    const double claimed = claimed_length_s();
    const double tolerance = std::max(0.1, 2 * nominal_frame_s());
    if (claimed > 0 && end < claimed - tolerance) {
      char buf[128];
      std::snprintf(buf, sizeof buf, ": truncated or damaged: video packets end at %.3f s, the container says %.3f s", end,
                    claimed);
      throw Error(info.path + buf);
    }
    return end;
  }

  // The video's length the container header states without a stream duration: Matroska's
  // per-track DURATION tag, else (a file with no other stream to be longer) the file's duration.
  // Some muxers count these from 0 and some from the start time: the smaller reading is taken.
  double claimed_length_s() const {
    double claimed = -1;
    if (const AVDictionaryEntry* tag = av_dict_get(st->metadata, "DURATION", nullptr, 0)) {
      int h = 0, m = 0;
      double sec = 0;
      if (std::sscanf(tag->value, "%d:%d:%lf", &h, &m, &sec) == 3) claimed = h * 3600.0 + m * 60.0 + sec;
    } else if (fmt->nb_streams == 1 && fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) {
      claimed = static_cast<double>(fmt->duration) / AV_TIME_BASE;
    }
    return claimed > 0 ? claimed - std::max(0.0, origin_s) : -1;
  }

  // Largest packet end (seconds, stream clock) from here to EOF; -1 when no packet.
  double scan_packets_end() {
    double end = -1;
    while (av_read_frame(fmt.get(), pkt.get()) >= 0) {
      if (pkt->stream_index == stream_index) {
        int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
        if (ts != AV_NOPTS_VALUE) {
          double d = pkt->duration > 0 ? pkt->duration * tb : nominal_frame_s();
          end = std::max(end, ts * tb + d);
        }
      }
      av_packet_unref(pkt.get());
    }
    return end;
  }

  void seek_start() {
    if (av_seek_frame(fmt.get(), stream_index, start_ticks, AVSEEK_FLAG_BACKWARD) < 0 &&
        avformat_seek_file(fmt.get(), stream_index, INT64_MIN, start_ticks, start_ticks, 0) < 0) {
      open();  // not seekable: start again from scratch
      return;
    }
    avcodec_flush_buffers(codec.get());
    draining = false;
    have_cur = false;
    last_ts = AV_NOPTS_VALUE;
  }

  // Next decoded frame into tmp; false at the end of the stream.
  bool receive() {
    for (;;) {
      int r = avcodec_receive_frame(codec.get(), tmp.get());
      if (r == 0) return true;
      if (r == AVERROR_EOF) return false;
      if (r != AVERROR(EAGAIN)) {  // a decoding error the decoder cannot get past
        last_decode_error = av_error(r);
        return false;
      }
      if (draining) return false;
      r = av_read_frame(fmt.get(), pkt.get());
      if (r < 0) {
        if (r != AVERROR_EOF && !avio_feof(fmt->pb)) read_error = av_error(r);
        avcodec_send_packet(codec.get(), nullptr);
        draining = true;
        continue;
      }
      if (pkt->stream_index == stream_index) {
        // Nothing before the target is shown: let the decoder drop frames no other frame needs.
        const bool before = pkt->pts != AV_NOPTS_VALUE && pkt->pts * tb - origin_s < skip_before_s - 2 * kPtsTolerance;
        codec->skip_frame = before ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        r = avcodec_send_packet(codec.get(), pkt.get());
        if (r < 0 && r != AVERROR(EAGAIN)) {
          ++bad_packets;
          last_decode_error = av_error(r);
        }
      }
      av_packet_unref(pkt.get());
    }
  }

  bool next() {
    if (!receive()) {
      if (frames_out == 0) throw_undecodable();
      return false;
    }
    accept_frame();
    return true;
  }

  [[noreturn]] void throw_undecodable() const {
    std::string why = bad_packets ? std::to_string(bad_packets) + " packets failed to decode: " + last_decode_error
                                  : !read_error.empty() ? read_error : last_decode_error;
    throw Error(info.path + ": no decodable video frames" + (why.empty() ? "" : " (" + why + ")"));
  }

  // The decoded frame in tmp becomes the current one.
  void accept_frame() {
    int64_t ts = tmp->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = tmp->pts;
    int64_t dur = frame_duration_ticks(tmp.get());
    if (ts == AV_NOPTS_VALUE) {  // no timestamp at all: continue from the previous frame
      ts = last_ts == AV_NOPTS_VALUE ? start_ticks
                                     : last_ts + std::max<int64_t>(1, std::llround(cur_dur / tb));
    }
    av_frame_unref(cur.get());
    av_frame_move_ref(cur.get(), tmp.get());
    last_ts = ts;
    cur_pts = ts * tb - origin_s;
    cur_dur = dur > 0 ? dur * tb : nominal_frame_s();
    have_cur = true;
    ++frames_out;
  }

  // The time of the first frame the index places beyond the file's end (a truncated file whose
  // index was written first, like an mp4 with +faststart); -1 when none is.
  double indexed_data_end_s() const {
    const int64_t size = fmt->pb ? avio_size(fmt->pb) : -1;
    const int n = avformat_index_get_entries_count(st);
    if (size <= 0 || n <= 0) return -1;
    for (int i = 0; i < n; ++i) {
      const AVIndexEntry* e = avformat_index_get_entry(st, i);
      if (e && e->pos >= 0 && e->pos + e->size > size) return e->timestamp * tb - origin_s;
    }
    return -1;
  }

  // The keyframe nearest to t: by the keyframe index when the container has one (the entries at
  // or before and at or after t), else the first keyframe from where a backward seek to t lands.
  // Only that packet goes to the decoder, then a drain makes it give the frame at once (a decoder
  // with reordering delay would otherwise wait for more packets).
  bool keyframe_near(double t) {
    int64_t target = static_cast<int64_t>(std::floor((std::max(0.0, t) + origin_s) / tb));
    if (avformat_index_get_entries_count(st) > 0) {
      const AVIndexEntry* before = avformat_index_get_entry_from_timestamp(st, target, AVSEEK_FLAG_BACKWARD);
      const AVIndexEntry* after = avformat_index_get_entry_from_timestamp(st, target, 0);
      const AVIndexEntry* pick = before;
      if (!pick || (after && std::llabs(after->timestamp - target) < std::llabs(target - pick->timestamp))) pick = after;
      if (pick) {
        // Aim between the chosen keyframe and the next one: index times are decode times, and some
        // demuxers (mov with B-frames) shift a seek target by the decode delay, which would land
        // on the keyframe before when aiming at its time exactly.
        const AVIndexEntry* next = avformat_index_get_entry_from_timestamp(st, pick->timestamp + 1, 0);
        const int64_t gap = next && next->timestamp > pick->timestamp ? next->timestamp - pick->timestamp
                                                                        : static_cast<int64_t>(1.0 / tb);
        target = pick->timestamp + gap / 2;
      }
    }
    if (av_seek_frame(fmt.get(), stream_index, target, AVSEEK_FLAG_BACKWARD) < 0 &&
        avformat_seek_file(fmt.get(), stream_index, INT64_MIN, target, target, 0) < 0) {
      seek_start();
    }
    avcodec_flush_buffers(codec.get());
    draining = false;
    have_cur = false;
    last_ts = AV_NOPTS_VALUE;
    codec->skip_frame = AVDISCARD_DEFAULT;
    bool sent = false;
    while (!sent) {
      const int r = av_read_frame(fmt.get(), pkt.get());
      if (r < 0) {
        if (r != AVERROR_EOF && !avio_feof(fmt->pb)) read_error = av_error(r);
        break;
      }
      if (pkt->stream_index == stream_index && (pkt->flags & AV_PKT_FLAG_KEY)) {  // non-key packets: dropped here
        const int s = avcodec_send_packet(codec.get(), pkt.get());
        if (s < 0 && s != AVERROR(EAGAIN)) {
          ++bad_packets;
          last_decode_error = av_error(s);
        } else {
          sent = true;
        }
      }
      av_packet_unref(pkt.get());
    }
    avcodec_send_packet(codec.get(), nullptr);
    draining = true;
    const bool got = receive();
    if (got) accept_frame();
    avcodec_flush_buffers(codec.get());  // out of draining, ready for the next seek
    draining = false;
    return got;
  }

  // Seeking to t pays off when a keyframe lies between the current frame and t.
  bool worth_seeking(double t) const {
    const double here = have_cur ? cur_pts : 0.0;
    if (t <= here + kPtsTolerance) return false;
    int64_t target = static_cast<int64_t>(std::floor((t + origin_s) / tb));
    if (avformat_index_get_entries_count(st) > 0) {
      const AVIndexEntry* e = avformat_index_get_entry_from_timestamp(st, target, AVSEEK_FLAG_BACKWARD);
      if (e) return e->timestamp * tb - origin_s > here + kPtsTolerance;
    }
    return t - here > opts.seek_min_gap_s;
  }

  void seek_before(double t) {
    int64_t target = static_cast<int64_t>(std::floor((t + origin_s) / tb));
    int r = av_seek_frame(fmt.get(), stream_index, target, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = avformat_seek_file(fmt.get(), stream_index, INT64_MIN, target, target, 0);
    if (r < 0) {
      seek_start();
      return;
    }
    avcodec_flush_buffers(codec.get());
    draining = false;
    have_cur = false;
    last_ts = AV_NOPTS_VALUE;
  }

  bool advance_to(double t) {
    if (have_cur && cur_pts >= t - kPtsTolerance) return true;
    struct SkipUntil {  // only while looking for t; plain next() decodes every frame
      double& bound;
      SkipUntil(double& b, double t) : bound(b) { bound = t; }
      ~SkipUntil() { bound = -1e300; }
    } skip(skip_before_s, t);
    if (worth_seeking(t)) {
      // Some demuxers land after the target: back off until the first frame is not past t.
      for (double back = 0;; back = back == 0 ? 1.0 : back * 4) {
        const double aim = t - back;
        if (aim <= 0) {
          seek_start();
          break;
        }
        seek_before(aim);
        if (!next()) return false;
        if (cur_pts <= t + kPtsTolerance) {
          if (cur_pts >= t - kPtsTolerance) return true;
          break;
        }
      }
    }
    while (next())
      if (cur_pts >= t - kPtsTolerance) return true;
    return false;
  }

  Image convert(int64_t w, int64_t h, int flags) const {
    if (!have_cur) throw Error(info.path + ": no current frame");
    SwsContext* ctx = sws.release();
    Image img = frame_to_rgb(cur.get(), w, h, flags, &ctx, info.path);
    sws.reset(ctx);
    return img;
  }
};

VideoDecoder::VideoDecoder(const std::string& path, const VideoDecoderOptions& opts)
    : impl_(std::make_unique<Impl>(path, opts)) {}
VideoDecoder::~VideoDecoder() = default;

const VideoInfo& VideoDecoder::info() const { return impl_->info; }
bool VideoDecoder::next() { return impl_->next(); }
bool VideoDecoder::advance_to(double t_s) { return impl_->advance_to(t_s); }
bool VideoDecoder::keyframe_near(double t_s) { return impl_->keyframe_near(t_s); }
double VideoDecoder::indexed_data_end_s() const { return impl_->indexed_data_end_s(); }
void VideoDecoder::rewind() { impl_->seek_start(); }
bool VideoDecoder::has_frame() const { return impl_->have_cur; }
double VideoDecoder::pts_s() const { return impl_->cur_pts; }
double VideoDecoder::frame_duration_s() const { return impl_->cur_dur; }
int64_t VideoDecoder::frames_decoded() const { return impl_->frames_out; }
std::string VideoDecoder::read_error() const { return impl_->read_error; }

Image VideoDecoder::rgb() const {
  const AVFrame* f = impl_->cur.get();
  return rotate_clockwise(impl_->convert(f->width, f->height, kFullSizeFlags), impl_->info.rotation);
}

VideoFrame VideoDecoder::frame() const {
  if (!impl_->have_cur) throw Error(impl_->info.path + ": no current frame");
  AVFrame* ref = av_frame_clone(impl_->cur.get());
  if (!ref) throw Error(impl_->info.path + ": out of memory");
  VideoFrame out;
  out.frame_ = std::shared_ptr<const AVFrame>(ref, [](const AVFrame* f) {
    AVFrame* p = const_cast<AVFrame*>(f);
    av_frame_free(&p);
  });
  out.pts_s = impl_->cur_pts;
  out.duration_s = impl_->cur_dur;
  out.rotation_ = impl_->info.rotation;
  out.path_ = impl_->info.path;
  return out;
}

Image VideoFrame::rgb() const {
  if (!frame_) throw Error(path_ + ": empty frame");
  SwsContext* ctx = nullptr;
  Image img;
  try {
    img = frame_to_rgb(frame_.get(), frame_->width, frame_->height, kFullSizeFlags, &ctx, path_);
  } catch (...) {
    sws_freeContext(ctx);
    throw;
  }
  sws_freeContext(ctx);
  return rotate_clockwise(img, rotation_);
}

Image VideoDecoder::rgb_scaled(int64_t w, int64_t h) const {
  if (w < 1 || h < 1) throw Error(impl_->info.path + ": bad scaled frame size");
  return impl_->convert(w, h, SWS_AREA);
}

}  // namespace clipcap
