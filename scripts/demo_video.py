#!/usr/bin/python3
"""The demo's video: held-out emoji shown one after another, and the check of its subtitles.

    demo_video.py make  --dataset DATASET_JSON --images DIR --out DIR [--count 16] [--seconds 2]
                        [--size 256] [--fps 25] [--split test]
    demo_video.py check --segments DIR/segments.json --srt VIDEO_caption.srt --out demo_video.json

make: picks --count images of the --split split of a Karpathy-style dataset (scripts/
make_emoji_dataset.py's dataset_emoji.json, whose test split is the twitter art no model saw),
evenly spaced through the split's order (a fixed rule, not chosen by how well any model does);
makes DIR/emoji_demo.mp4 with the ffmpeg CLI, each image shown --seconds, scaled to --size px
(nearest neighbour: the art's pixels, only bigger), H.264 at --fps; writes DIR/segments.json
(the known segment times, the images and their reference captions) last, so it marks a complete
video.

check: reads the SRT clipcap-infer wrote for the video and the known segments, and reports
  - boundaries: every cue boundary within one frame interval of a known change (or the video's
    start and end). Changes without a cue boundary are listed: there one cue covers both
    segments, because they got the same caption (clipcap-infer merges equal neighbouring cues)
    or the cut was not detected; the SRT cannot tell which, and either way the match share
    below counts the one caption against each segment's references;
  - matches: the share of segments whose caption (the cue covering the segment's middle) equals
    one of the shown emoji's references after normalisation (scripts/caption_match.py).
Writes --out (JSON) and prints one line; exit 1 when a boundary is off (the video's cuts were not
found where they are), exit 0 otherwise whatever the match share.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

from caption_match import matches as caption_matches, normalise


def fail(msg):
    sys.exit(f"demo_video: {msg}")


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


# ---- make ------------------------------------------------------------------------------------

def pick_images(dataset_path, split, count):
    try:
        with open(dataset_path, encoding="utf-8") as f:
            images = json.load(f)["images"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"{dataset_path}: not a readable Karpathy-style dataset JSON ({e})")
    pool = [im for im in images if im.get("split") == split]
    if len(pool) < count:
        fail(f"{dataset_path}: the {split} split has {len(pool)} images, the demo needs {count}")
    # Evenly spaced, each taken from the middle of its stretch of the split.
    return [pool[(2 * i + 1) * len(pool) // (2 * count)] for i in range(count)]


def make(args):
    chosen = pick_images(args.dataset, args.split, args.count)
    os.makedirs(args.out, exist_ok=True)
    video = os.path.join(args.out, "emoji_demo.mp4")
    segments_path = os.path.join(args.out, "segments.json")
    # Every input is one still image looped for exactly fps * seconds frames; concat joins them.
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for im in chosen:
        path = os.path.join(args.images, im["filename"])
        if not os.path.isfile(path):
            fail(f"{path}: image of the dataset is missing")
        cmd += ["-loop", "1", "-framerate", str(args.fps), "-t", str(args.seconds), "-i", path]
    frames = int(round(args.fps * args.seconds))
    chains = [f"[{i}:v]scale={args.size}:{args.size}:flags=neighbor,setsar=1,format=yuv420p,"
              f"trim=end_frame={frames},setpts=PTS-STARTPTS[v{i}]" for i in range(len(chosen))]
    concat = "".join(f"[v{i}]" for i in range(len(chosen))) + f"concat=n={len(chosen)}:v=1:a=0[out]"
    fd, tmp_video = tempfile.mkstemp(suffix=".mp4", dir=args.out)
    os.close(fd)
    cmd += ["-filter_complex", ";".join(chains + [concat]), "-map", "[out]", "-r", str(args.fps),
            "-c:v", "libx264", "-preset", "medium", "-crf", "12", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
            tmp_video]
    try:
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        os.unlink(tmp_video)
        fail(f"ffmpeg could not make {video}: {e}")
    os.replace(tmp_video, video)

    # Each segment is a whole number of frames: its true length is frames / fps (1.5 s at 25 fps is
    # 38 frames, 1.52 s), and the known changes must be where the video has them.
    seconds = frames / args.fps
    segments = []
    for i, im in enumerate(chosen):
        segments.append({"start_s": round(i * seconds, 6), "end_s": round((i + 1) * seconds, 6), "image": im["filename"],
                         "references": [s["raw"] for s in im["sentences"]]})
    write_json_atomic(segments_path, {"video": video, "fps": args.fps, "seconds_per_segment": seconds,
                                      "size": args.size, "split": args.split, "dataset": args.dataset,
                                      "segments": segments})
    print(f"demo_video: {video}: {len(segments)} segments of {seconds} s ({args.split} split of {args.dataset})")


# ---- check -----------------------------------------------------------------------------------

def srt_seconds(stamp, where):
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d),(\d\d\d)", stamp.strip())
    if not m:
        fail(f"{where}: bad SRT timestamp '{stamp}'")
    h, mi, s, ms = (int(x) for x in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000.0


def read_srt(path):
    """[(start_s, end_s, text)] of an SRT file."""
    try:
        with open(path, encoding="utf-8") as f:
            blocks = [b for b in re.split(r"\n\s*\n", f.read().strip()) if b.strip()]
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror})")
    cues = []
    for n, block in enumerate(blocks, 1):
        lines = block.splitlines()
        if len(lines) < 3 or "-->" not in lines[1]:
            fail(f"{path}: cue {n} is not 'index / start --> end / text'")
        start, end = lines[1].split("-->")
        cues.append((srt_seconds(start, f"{path} cue {n}"), srt_seconds(end, f"{path} cue {n}"),
                     " ".join(lines[2:]).strip()))
    if not cues:
        fail(f"{path}: no cues")
    return cues


def check(args):
    try:
        with open(args.segments, encoding="utf-8") as f:
            meta = json.load(f)
        segments = meta["segments"]
        frame = 1.0 / meta["fps"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"{args.segments}: not a demo segments file ({e})")
    cues = read_srt(args.srt)

    changes = [s["start_s"] for s in segments[1:]]
    ends = [segments[0]["start_s"], segments[-1]["end_s"]]
    bad_boundaries = []
    for start, end, _ in cues:
        for t in (start, end):
            if min(abs(t - c) for c in changes + ends) > frame + 1e-6:
                bad_boundaries.append(t)

    rows = []
    for s in segments:
        middle = 0.5 * (s["start_s"] + s["end_s"])
        caption = next((text for start, end, text in cues if start <= middle < end), "")
        rows.append({"start_s": s["start_s"], "end_s": s["end_s"], "image": s["image"], "caption": caption,
                     "references": s["references"], "match": caption_matches(caption, s["references"])})
    one_cue = [c for c in changes if not any(abs(t - c) <= frame + 1e-6 for start, end, _ in cues for t in (start, end))]

    matches = sum(r["match"] for r in rows)
    result = {"srt": args.srt, "segments_file": args.segments, "frame_interval_s": frame, "cues": len(cues),
              "segments": len(rows), "matches": matches, "match_share": matches / len(rows),
              "boundaries_ok": not bad_boundaries, "boundaries_off_s": bad_boundaries,
              "changes_inside_one_cue_s": one_cue, "rows": rows}
    write_json_atomic(args.out, result)
    print(f"demo_video: {len(cues)} cues for {len(rows)} segments; boundaries within one frame ({frame * 1000:.0f} ms) "
          f"of the changes: {'yes' if result['boundaries_ok'] else 'NO'}; captions matching a reference: "
          f"{matches}/{len(rows)}" + (f"; {len(one_cue)} change(s) inside one cue" if one_cue else ""))
    if not result["boundaries_ok"]:
        fail(f"{args.srt}: cue boundaries at {bad_boundaries} s, more than one frame interval from every known change")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="make the demo video and its segments.json")
    m.add_argument("--dataset", required=True, help="Karpathy-style dataset JSON (dataset_emoji.json)")
    m.add_argument("--images", required=True, help="directory of the dataset's images")
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--split", default="test")
    m.add_argument("--count", type=int, default=16)
    m.add_argument("--seconds", type=float, default=2.0)
    m.add_argument("--size", type=int, default=256)
    m.add_argument("--fps", type=int, default=25)
    c = sub.add_parser("check", help="check the SRT of the demo video against the known segments")
    c.add_argument("--segments", required=True)
    c.add_argument("--srt", required=True)
    c.add_argument("--out", required=True, help="JSON report to write")
    args = p.parse_args()
    if args.command == "make":
        if args.count < 1 or args.seconds <= 0 or args.size < 1 or args.fps < 1:
            fail("--count, --seconds, --size and --fps must be positive")
        make(args)
    else:
        check(args)


if __name__ == "__main__":
    main()
