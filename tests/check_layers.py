#!/usr/bin/env python3
"""Fails when a source file includes a header of a layer it may not use.

The layers and what each may include are ARCHITECTURE.md's picture, which CMakeLists.txt's library
links also follow: a lower layer never includes a higher one, siblings never include each other.
Run by ctest (label unit); usage: check_layers.py [REPO_ROOT]."""
import pathlib
import re
import sys

# layer -> the layers its files may include (itself included)
BELOW = {
    "common": [],
    "image": ["common"],
    "model/weights": ["common"],
    "model/tokenizers": ["common"],
    "model/kernels": ["common"],
    "model": ["common", "image", "model/weights", "model/tokenizers", "model/kernels"],
    "backend": ["model"],
    "data": ["model"],
    "train": ["data"],
    "eval": ["backend", "data"],
    "infer": ["backend"],
    "serve": ["backend"],
}


def allowed(layer):
    out = {layer}
    for lower in BELOW[layer]:
        out |= allowed(lower)
    return out


def layer_of(path):
    """The deepest layer whose folder holds path ("model/weights/x.h" -> "model/weights")."""
    parts = path.split("/")
    for depth in (2, 1):
        name = "/".join(parts[:depth])
        if len(parts) > depth and name in BELOW:
            return name
    return None


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
    problems = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".h", ".cpp"):
            continue
        rel = path.relative_to(root).as_posix()
        layer = layer_of(rel)
        if layer is None or rel.startswith("build"):
            continue  # tests/, bench/, build trees: they may use every layer
        ok = allowed(layer)
        for include in INCLUDE.findall(path.read_text(errors="replace")):
            target = layer_of(include)
            if target is not None and target not in ok:
                problems.append(f"{rel}: includes {include} ({target}), but {layer} may only use {', '.join(sorted(ok))}")
    for p in problems:
        print(p)
    print(f"check_layers: {len(problems)} include(s) across layers" if problems else "check_layers: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
