"""Tiny hostile files (issue 22, items 15, 16 and 19): a few hundred bytes that declare a huge
network or array are refused in seconds, before anything of that size is allocated, within a
4 GB address space; and the memory an address-space limit leaves is what the tile is sized by.

Each case runs in a subprocess under ``prlimit``: a regression there is a refused allocation or
a timeout, never a machine that swaps."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import zarr
from PIL import Image
from safetensors.torch import save_file

from napari_srn import SRNConfig

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")

#: Each case in turn, in one interpreter (torch's start-up counted once), one line each as it
#: ends (``<kind> <seconds> <exception type> <message>``, or ``accepted``), so that a timeout
#: shows which case hung.
_REFUSE_EACH = """
import sys, time
from napari_srn import deblur, deblur_to_zarr, load_model

for kind, path in zip(sys.argv[1::2], sys.argv[2::2]):
    start = time.perf_counter()
    try:
        if kind == "weights":
            load_model(path, device="cpu")
        elif kind == "deblur":
            deblur(path, model="default", device="cpu")
        else:
            deblur_to_zarr(path, path + ".out.zarr", model="default", device="cpu")
        outcome = "accepted"
    except (ValueError, TypeError, MemoryError) as err:
        outcome = type(err).__name__ + " " + str(err).replace(chr(10), " ")
    print(kind, round(time.perf_counter() - start, 1), outcome, flush=True)
"""


def _refuse_each(cases: list[tuple[str, str]], limit: int = 4_000_000_000) -> list[str]:
    command = ["prlimit", f"--as={limit}", sys.executable, "-c", _REFUSE_EACH]
    command += [item for case in cases for item in case]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:  # a loaded machine: once more (the bugs take minutes)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"not refused within 10 s; refused so far: {err.stdout}") from None
    lines = done.stdout.splitlines()
    assert len(lines) == len(cases), (done.stdout, done.stderr)
    return lines


def _weights(path, **config) -> str:
    """A napari-srn weights file of one small tensor whose config declares ``config``."""
    meta = {"format": "napari-srn", "format_version": "1", "config": SRNConfig(**config).to_json()}
    save_file({"out.bias": torch.zeros(3)}, str(path), metadata=meta)
    assert path.stat().st_size < 1024
    return str(path)


def test_a_tiny_weights_file_declaring_a_huge_network_is_refused_in_seconds(tmp_path):
    # item 15: res_blocks=10**7 grew to 1.5 GB in 60 s; res_blocks=20000 took 82 s to refuse
    cases = [
        ("weights", _weights(tmp_path / "deep.safetensors", res_blocks=10**7)),
        ("weights", _weights(tmp_path / "deeper.safetensors", res_blocks=20_000)),
        ("weights", _weights(tmp_path / "wide.safetensors", width=10**9)),
    ]
    for line in _refuse_each(cases):
        assert line.startswith("weights") and " ValueError " in line, line
        assert "declares" in line and "at most" in line, line


def _store(path, shape, chunks, dtype="uint8") -> str:
    """A zarr array of ``shape`` whose metadata is all there is (no chunk written)."""
    zarr.create_array(str(path), shape=shape, chunks=chunks, dtype=dtype)
    assert (path / "zarr.json").stat().st_size < 1024
    return str(path)


def test_a_tiny_zarr_store_declaring_a_huge_array_is_refused_in_seconds(tmp_path):
    # item 16: 10^9 x 10^9 in 1024^2 chunks took 21 GB in 90 s; one chunk of 10^62 4.3 GB
    giga = _store(tmp_path / "giga.zarr", (10**9, 10**9), (1024, 1024))
    one = _store(tmp_path / "one.zarr", (10**18, 10**18), (10**18, 10**18))
    e62 = _store(tmp_path / "e62.zarr", (10**15, 10**15, 10**16, 10**16), (10**15,) * 4)
    beyond = _store(tmp_path / "beyond.zarr", (10**31, 10**31), (10**31, 10**31))
    # chunks of 1 GiB, 16,384 of them: each limit on the chunks holds, not the tiles' (uint16:
    # the range pass that reads every value must not start either)
    tiles = _store(tmp_path / "tiles.zarr", (2**22, 2**22), (2**15, 2**14), "uint16")
    cases = [("deblur", giga), ("to_zarr", giga), ("deblur", one), ("deblur", e62)]
    cases += [("deblur", beyond), ("deblur", tiles), ("to_zarr", tiles)]
    lines = _refuse_each(cases)
    for line in lines:
        assert " ValueError " in line, line
    for line in lines[:2]:
        assert "has 953,675,292,969 chunks; napari-srn takes at most 65,536" in line, line
    for line in lines[2:5]:
        assert "has a chunk of" in line and "at most 1 GiB" in line, line
    for line in lines[5:]:
        assert re.search(r"make [\d,]{10,} tiles .*takes at most 32,768 tiles", line), line
    assert not list(tmp_path.glob("*.out.zarr"))  # refused before the destination is made


def _rgb(path, height: int, width: int) -> str:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(path)
    return str(path)


def test_an_address_space_limit_sizes_the_tile_and_refuses_a_tile_that_cannot_fit(tmp_path):
    # item 19: under prlimit --as=1.2 GB the automatic tile was 768 and the run ended with an
    # allocator error; an explicit tile that cannot fit was not refused up front (float32: the
    # same memory per pixel on every CPU)
    cli = ["prlimit", "--as=1200000000", sys.executable, "-m", "napari_srn", "deblur"]
    cli += ["--precision", "float32", "--no-progress"]
    big, out = _rgb(tmp_path / "rgb2048.png", 2048, 2048), tmp_path / "o.png"
    refused = subprocess.run(
        [*cli, big, str(out), "--tile-size", "2048"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and not out.exists(), refused.stderr
    assert re.search(r"--tile-size 2048 needs about .*address-space limit", refused.stderr)
    fits = int(re.search(r"use --tile-size (\d+) or less", refused.stderr).group(1))
    assert 0 < fits < 768, refused.stderr  # what the automatic tile was
    image = _rgb(tmp_path / "rgb.png", 512, 1024)  # larger than that tile both ways
    done = subprocess.run([*cli, image, str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as written:
        assert written.size == (1024, 512) and written.mode == "RGB"
