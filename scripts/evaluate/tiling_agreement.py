"""Tiled vs untiled agreement of a random-weight SRN, as a function of the overlap (halo).

Compares the level-by-level tiler that napari-srn uses with the naive approach (the whole
3-scale network run on each full-resolution tile). 512 x 512 photo, 128-pixel tiles. PSNR is
over the untiled output's own range (a random network's outputs span ~24 units, not 1).

    python scripts/evaluate/tiling_agreement.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from skimage import data

from napari_srn import SRN, SRNConfig
from napari_srn.inference.eager import Runner, drain  # raw tiler output at any halo; deblur clips
from napari_srn.inference.precision import Precision
from napari_srn.tiling import iter_tiled, tile_slices


def psnr(a, ref):
    mse = float(np.mean((a.astype(np.float64) - ref) ** 2))
    return 10 * np.log10(float(ref.max() - ref.min()) ** 2 / mse) if mse else float("inf")


def main() -> None:
    image = data.astronaut().astype(np.float32).transpose(2, 0, 1) / 255
    ref = Precision.reference()
    print("halo | level-by-level (none) | level-by-level (convlstm) | naive whole-network tiles")
    nets = {}
    for rec in ("none", "convlstm"):
        torch.manual_seed(0)
        nets[rec] = SRN(SRNConfig(recurrent=rec)).eval()
    refs = {k: drain(Runner(n, ref, None, 0).run(image)) for k, n in nets.items()}

    def naive(net, halo):
        out = np.empty_like(image)

        def predict(w):
            with torch.inference_mode():
                return net(torch.from_numpy(np.ascontiguousarray(w))[None])[0].numpy()

        for _ in iter_tiled(image, predict, out, tile_slices(image.shape[-2:], 128, halo, 16)):
            pass
        return out

    for halo in (16, 32, 48, 64, 96):
        t = time.perf_counter()
        row = [psnr(drain(Runner(nets[k], ref, 128, halo).run(image)), refs[k]) for k in nets]
        row.append(psnr(naive(nets["none"], halo), refs["none"]))
        print(
            f"{halo:4d} | "
            + " | ".join(f"{v:6.1f} dB" for v in row)
            + f"   ({time.perf_counter() - t:.0f} s)"
        )


if __name__ == "__main__":
    main()
