#!/usr/bin/python3
"""The demo's helpers: scripts/caption_match.py (exact match) and scripts/demo_video.py (the
video of held-out emoji and the check of its subtitles), on data the test writes (no network).

Run by ctest (tests/CMakeLists.txt) or directly: /usr/bin/python3 tests/test_demo_scripts.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
sys.path.insert(0, SCRIPTS)

import caption_match  # noqa: E402


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args], capture_output=True, text=True)


def srt(cues):
    def stamp(t):
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    return "".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


class CaptionMatchTest(unittest.TestCase):
    def test_normalisation(self):
        self.assertTrue(caption_match.matches("Flag of Japan.", ["flag of japan"]))
        self.assertTrue(caption_match.matches("  grinning   face ", "grinning face"))
        self.assertTrue(caption_match.matches("keycap #", ["keycap #"]))
        self.assertTrue(caption_match.matches("thumbs up", ["thumbs up sign", "thumbs up"]))
        self.assertFalse(caption_match.matches("keycap *", ["keycap #"]))
        self.assertFalse(caption_match.matches("thumbs up with light skin tone", ["thumbs up with dark skin tone"]))
        self.assertFalse(caption_match.matches("", ["bird"]))

    def test_share_over_predictions(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "predictions.jsonl")
            with open(p, "w") as f:
                f.write(json.dumps({"image": "a.png", "prediction": "bird", "references": ["bird"]}) + "\n\n")
                f.write(json.dumps({"image": "b.png", "prediction": "Bird.", "references": ["cat", "bird"]}) + "\n")
                f.write(json.dumps({"image": "c.png", "prediction": "dog", "references": ["cat"]}) + "\n")
            r = run("caption_match.py", p, "--out", os.path.join(d, "em.json"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("exact match: 2/3 (66.7%)", r.stdout)
            with open(os.path.join(d, "em.json")) as f:
                self.assertEqual(json.load(f)["matches"], 2)

    def test_bad_line_is_named(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "predictions.jsonl")
            with open(p, "w") as f:
                f.write(json.dumps({"image": "a.png", "prediction": "bird", "references": ["bird"]}) + "\n{oops\n")
            r = run("caption_match.py", p)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("predictions.jsonl:2", r.stderr)


class DemoVideoCheckTest(unittest.TestCase):
    SEGMENTS = [(0, 2, "a.png", ["bird"]), (2, 4, "b.png", ["cat face", "cat"]), (4, 6, "c.png", ["dog"]),
                (6, 8, "d.png", ["fish"])]

    def check(self, cues):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        seg = os.path.join(d, "segments.json")
        with open(seg, "w") as f:
            json.dump({"fps": 25, "segments": [{"start_s": a, "end_s": b, "image": i, "references": r}
                                               for a, b, i, r in self.SEGMENTS]}, f)
        sub = os.path.join(d, "v_caption.srt")
        with open(sub, "w") as f:
            f.write(srt(cues))
        out = os.path.join(d, "check.json")
        r = run("demo_video.py", "check", "--segments", seg, "--srt", sub, "--out", out)
        result = None
        if os.path.exists(out):
            with open(out) as f:
                result = json.load(f)
        return r, result

    def test_cuts_within_a_frame_and_matches_counted(self):
        # 0.04 s is one frame at 25 fps: a cut found one frame late is still right.
        r, res = self.check([(0, 2.04, "Bird."), (2.04, 4, "cat"), (4, 6, "wolf"), (6, 8, "fish")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(res["boundaries_ok"])
        self.assertEqual((res["matches"], res["segments"]), (3, 4))
        self.assertEqual([row["match"] for row in res["rows"]], [True, True, False, True])

    def test_merged_equal_captions_keep_the_boundaries_right(self):
        r, res = self.check([(0, 4, "bird"), (4, 6, "dog"), (6, 8, "fish")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(res["boundaries_ok"])
        self.assertEqual(res["matches"], 3)  # b.png's caption "bird" is not one of its references

    def test_boundary_off_by_more_than_a_frame_fails(self):
        r, res = self.check([(0, 2.1, "bird"), (2.1, 4, "cat"), (4, 6, "dog"), (6, 8, "fish")])
        self.assertEqual(r.returncode, 1)
        self.assertIn("more than one frame interval", r.stderr)
        self.assertFalse(res["boundaries_ok"])

    def test_change_inside_one_cue_is_listed(self):
        r, res = self.check([(0, 2, "bird"), (2, 4, "cat"), (4, 8, "dog")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(res["changes_inside_one_cue_s"], [6])
        self.assertEqual([row["caption"] for row in res["rows"]], ["bird", "cat", "dog", "dog"])
        self.assertEqual(res["matches"], 3)

    def test_malformed_srt_is_named(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        seg = os.path.join(d, "segments.json")
        with open(seg, "w") as f:
            json.dump({"fps": 25, "segments": [{"start_s": 0, "end_s": 2, "image": "a", "references": ["x"]}]}, f)
        sub = os.path.join(d, "bad.srt")
        with open(sub, "w") as f:
            f.write("1\n00:00:00.000 -> 00:00:02,000\nx\n")
        r = run("demo_video.py", "check", "--segments", seg, "--srt", sub, "--out", os.path.join(d, "c.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bad.srt", r.stderr)


@unittest.skipUnless(shutil.which("ffmpeg") and shutil.which("ffprobe"), "needs the ffmpeg CLI")
class DemoVideoMakeTest(unittest.TestCase):
    def test_segments_have_exact_frame_counts(self):
        from PIL import Image
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        os.makedirs(os.path.join(d, "images"))
        images = []
        colours = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (250, 200, 0), (120, 0, 120), (0, 0, 0)]
        for i, c in enumerate(colours):
            name = f"twitter_{i}.png" if i % 2 else f"apple_{i}.png"
            Image.new("RGB", (64, 64), c).save(os.path.join(d, "images", name))
            images.append({"filename": name, "split": "test" if i % 2 else "train",
                           "sentences": [{"raw": f"colour {i}"}]})
        with open(os.path.join(d, "dataset.json"), "w") as f:
            json.dump({"images": images}, f)
        # 1 s at 10 fps is 10 frames; 1.25 s cannot be: 12 frames, and the segments say 1.2 s, where
        # the video really changes (the demo's 1.5 s at 25 fps is 38 frames, 1.52 s).
        for seconds, per_segment in (("1", 10), ("1.25", 12)):
            with self.subTest(seconds=seconds):
                out = os.path.join(d, "video" + seconds)
                r = run("demo_video.py", "make", "--dataset", os.path.join(d, "dataset.json"), "--images",
                        os.path.join(d, "images"), "--out", out, "--count", "3", "--seconds", seconds, "--size", "32",
                        "--fps", "10")
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(os.path.join(out, "segments.json")) as f:
                    meta = json.load(f)
                self.assertEqual([s["image"] for s in meta["segments"]], ["twitter_1.png", "twitter_3.png", "twitter_5.png"])
                seg = per_segment / 10
                self.assertEqual([(s["start_s"], s["end_s"]) for s in meta["segments"]],
                                 [(round(i * seg, 6), round((i + 1) * seg, 6)) for i in range(3)])
                self.assertEqual(meta["segments"][1]["references"], ["colour 3"])
                # per_segment frames per segment, each frame the colour of its segment's image.
                raw = subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(out, "emoji_demo.mp4"), "-f",
                                      "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
                frame = 32 * 32 * 3
                self.assertEqual(len(raw), 3 * per_segment * frame)
                for k in range(3 * per_segment):
                    centre = raw[k * frame + (16 * 32 + 16) * 3: k * frame + (16 * 32 + 16) * 3 + 3]
                    want = colours[2 * (k // per_segment) + 1]
                    self.assertTrue(all(abs(a - b) <= 12 for a, b in zip(centre, want)), (k, tuple(centre), want))

    def test_too_few_images_is_an_error(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        with open(os.path.join(d, "dataset.json"), "w") as f:
            json.dump({"images": [{"filename": "a.png", "split": "test", "sentences": []}]}, f)
        r = run("demo_video.py", "make", "--dataset", os.path.join(d, "dataset.json"), "--images", d, "--out",
                os.path.join(d, "v"), "--count", "2")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("has 1 images, the demo needs 2", r.stderr)


if __name__ == "__main__":
    unittest.main()
