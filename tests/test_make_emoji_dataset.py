#!/usr/bin/python3
"""scripts/make_emoji_dataset.py on a tiny fake npm tree (no network): captions, splits, files.

Run by ctest (tests/CMakeLists.txt) or directly: /usr/bin/python3 tests/test_make_emoji_dataset.py
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "make_emoji_dataset.py")
VENDORS = ("apple", "google", "facebook", "twitter")

# (unified, name, has_img per vendor, sort_order, skin variations {tone: (unified, has_img)})
ALL = {v: True for v in VENDORS}
FAKE_EMOJI = [
    ("1F600", "GRINNING FACE", ALL, 1, {}),
    ("1F1EE-1F1F6", "IRAQ FLAG", ALL, 5, {}),
    ("0023-FE0F-20E3", "HASH KEY", ALL, 4, {}),
    ("1F44B", "WAVING HAND SIGN", ALL, 3,
     {"1F3FB": ("1F44B-1F3FB", ALL), "1F3FF": ("1F44B-1F3FF", dict(ALL, facebook=False))}),
    ("1F468-200D-1F9B2", "MAN: BALD", ALL, 2, {}),
    ("1FAE8", "SHAKING FACE", dict(ALL, twitter=False), 6, {}),  # not drawn by every vendor
]
LABELS = [
    {"hexcode": "1F600", "label": "grinning face"},
    {"hexcode": "1F1EE-1F1F6", "label": "flag: Iraq"},
    {"hexcode": "0023-20E3", "label": "keycap: #"},  # emojibase drops FE0F
    {"hexcode": "1F44B", "label": "waving hand",
     "skins": [{"hexcode": "1F44B-1F3FB", "label": "waving hand: light skin tone"},
               {"hexcode": "1F44B-1F3FF", "label": "waving hand: dark skin tone"}]},
    {"hexcode": "1F468-200D-1F9B2", "label": "man: bald"},
    {"hexcode": "1FAE8", "label": "shaking face"},
]


def write_fake_tree(root):
    entries = []
    for unified, name, drawn, order, skins in FAKE_EMOJI:
        e = {"unified": unified, "name": name, "image": unified.lower() + ".png", "sort_order": order,
             **{"has_img_" + v: drawn[v] for v in VENDORS}}
        if skins:
            e["skin_variations"] = {t: {"unified": u, "image": u.lower() + ".png",
                                        **{"has_img_" + v: d[v] for v in VENDORS}}
                                    for t, (u, d) in skins.items()}
        entries.append(e)
    for v in VENDORS:
        pkg = os.path.join(root, "node_modules", "emoji-datasource-" + v)
        art = os.path.join(pkg, "img", v, "64")
        os.makedirs(art)
        with open(os.path.join(pkg, "emoji.json"), "w") as f:
            json.dump(entries, f)
        for e in entries:
            for x in [e] + list(e.get("skin_variations", {}).values()):
                if x["has_img_" + v]:
                    # transparent corner, opaque red centre: the corner must come out white
                    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
                    im.paste((200, 10, 10, 255), (16, 16, 48, 48))
                    im.save(os.path.join(art, x["image"]))
    en = os.path.join(root, "node_modules", "emojibase-data", "en")
    os.makedirs(en)
    with open(os.path.join(en, "data.json"), "w") as f:
        json.dump(LABELS, f)


class MakeEmojiDatasetTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="clipcap-emoji-test-")
        self.src = self.tmp.name
        write_fake_tree(self.src)
        self.out = os.path.join(self.src, "dataset")

    def tearDown(self):
        self.tmp.cleanup()

    def run_script(self, *args):
        r = subprocess.run([sys.executable, SCRIPT, "--src", self.src, *args],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def read_karpathy(self):
        with open(os.path.join(self.out, "dataset_emoji.json"), encoding="utf-8") as f:
            return json.load(f)["images"]

    def test_captions_are_rewritten_labels_then_datasource_names(self):
        self.run_script()
        caps = {im["unified"]: [s["raw"] for s in im["sentences"]] for im in self.read_karpathy()}
        self.assertEqual(caps["1F600"], ["grinning face"])  # same name: one caption
        self.assertEqual(caps["1F1EE-1F1F6"], ["flag of iraq", "iraq flag"])
        self.assertEqual(caps["0023-FE0F-20E3"], ["keycap #", "hash key"])
        self.assertEqual(caps["1F468-200D-1F9B2"], ["bald man", "man: bald"])
        self.assertEqual(caps["1F44B"], ["waving hand", "waving hand sign"])
        self.assertEqual(caps["1F44B-1F3FB"],
                         ["waving hand with light skin tone", "waving hand sign with light skin tone"])

    def test_only_emoji_every_vendor_draws_in_unicode_order(self):
        self.run_script()
        names = [im["filename"] for im in self.read_karpathy() if im["vendor"] == "apple"]
        # sort_order, then code points; shaking face (no twitter) and the dark-tone hand (no facebook) out
        self.assertEqual(names, ["apple_1F600.png", "apple_1F468-200D-1F9B2.png", "apple_1F44B.png",
                                 "apple_1F44B-1F3FB.png", "apple_0023-FE0F-20E3.png", "apple_1F1EE-1F1F6.png"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.out, "images"))),
                         sorted(im["filename"] for im in self.read_karpathy()))

    def test_twitter_is_the_held_out_test_split(self):
        self.run_script("--val-percent", "20")
        images = self.read_karpathy()
        for im in images:
            self.assertEqual(im["split"] == "test", im["vendor"] == "twitter", im["filename"])
        others = [im for im in images if im["vendor"] != "twitter"]
        self.assertEqual(sum(im["split"] == "val" for im in others), round(len(others) * 0.2))

    def test_results_csv_is_the_upstream_flickr_format(self):
        self.run_script()
        with open(os.path.join(self.out, "results.csv"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "image_name| comment_number| comment")
        self.assertIn("apple_1F1EE-1F1F6.png| 0| flag of iraq", lines)
        self.assertIn("apple_1F1EE-1F1F6.png| 1| iraq flag", lines)
        caption_count = sum(len(im["sentences"]) for im in self.read_karpathy())
        self.assertEqual(len(lines) - 1, caption_count)

    def test_images_are_64px_rgb_on_white(self):
        self.run_script()
        with Image.open(os.path.join(self.out, "images", "google_1F600.png")) as im:
            self.assertEqual((im.mode, im.size), ("RGB", (64, 64)))
            self.assertEqual(im.getpixel((0, 0)), (255, 255, 255))
            self.assertEqual(im.getpixel((32, 32)), (200, 10, 10))

    def test_output_is_deterministic_and_limit_vendors_apply(self):
        self.run_script()
        with open(os.path.join(self.out, "dataset_emoji.json"), "rb") as f:
            first = f.read()
        self.run_script("--limit", "2", "--vendors", "apple,twitter")
        images = self.read_karpathy()
        self.assertEqual([im["filename"] for im in images],
                         ["apple_1F600.png", "apple_1F468-200D-1F9B2.png",
                          "twitter_1F600.png", "twitter_1F468-200D-1F9B2.png"])
        self.assertEqual(len(os.listdir(os.path.join(self.out, "images"))), 4)  # stale images removed
        self.run_script()
        with open(os.path.join(self.out, "dataset_emoji.json"), "rb") as f:
            self.assertEqual(f.read(), first)

    def test_missing_packages_name_the_file(self):
        r = subprocess.run([sys.executable, SCRIPT, "--src", os.path.join(self.src, "nowhere")],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("emojibase-data", r.stderr)
        self.assertIn("fetch_emoji_data.sh", r.stderr)
        r = subprocess.run([sys.executable, SCRIPT, "--src", self.src, "--vendors", "apple,microsoft"],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("microsoft", r.stderr)


if __name__ == "__main__":
    unittest.main()
