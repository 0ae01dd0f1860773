"""The GPU path, checked in one run: agreement with CPU float32, speed, memory, the OOM retry.

    python benchmarks/gpu_check.py                      # CUDA (the default device)
    python benchmarks/gpu_check.py --device cpu --quick # the same checks on the CPU, small sizes

1. **Agreement**: the bundled default on three photographs (scikit-image's astronaut, chelsea,
   coffee; 512 x 512 crops) with ``precision="auto"`` on the device, against CPU float32: PSNR
   of each (the pass mark is 50 dB).
2. **Speed**: a 720 x 1280 RGB frame and a 4096 x 4096 RGB image at the automatic tile size,
   after a warm-up, with the device synchronised: seconds and MP/s.
3. **Memory**: peak CUDA memory of each run (peak RSS on the CPU).
4. **Out-of-memory retry**: on CUDA, most of the free memory is taken by a ballast tensor and
   the 4096 x 4096 image is deblurred in one 4096-pixel tile: ``deblur`` must warn, halve the
   tile and finish with the same result as the automatic tile. On the CPU the out-of-memory
   error is simulated by a wrapper that raises it for windows above 256 x 256 pixels.

Prints one line per check and, last, a JSON summary; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _photo(size: int, shape: tuple[int, int]) -> np.ndarray:
    """A photo-like RGB test image of ``shape`` (the embedded sample, resized)."""
    from skimage.transform import resize

    from napari_srn.sample import blurred_sample

    img = resize(blurred_sample(), shape, order=1, preserve_range=True)
    return img.astype(np.uint8)


def _simulated_oom(net, limit: int):
    """A copy of ``net`` that raises CUDA's out-of-memory error for windows above ``limit``
    pixels (the CPU stand-in for a full GPU)."""
    from napari_srn.model.srn import SRN

    class SimulatedOOM(SRN):
        def level(self, x, prev, state=None):
            if x.shape[-2] * x.shape[-1] > limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().level(x, prev, state)

    copy = SimulatedOOM(net.config)
    copy.load_state_dict(net.state_dict())
    return copy.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="default")
    p.add_argument("--quick", action="store_true", help="small sizes (a CPU test of the script)")
    args = p.parse_args(argv)

    import skimage.data

    from napari_srn import auto_tile_size, deblur, load_model
    from napari_srn.inference.precision import resolve_precision

    device = torch.device(args.device)
    net = load_model(args.model, device=device)
    cpu_net = load_model(args.model, device="cpu")
    policy = resolve_precision("auto", device)
    crop, frame_shape, big = (96, (96, 160), 512) if args.quick else (512, (720, 1280), 4096)
    summary: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "precision": policy.name,
        "model": net.card.name,
    }
    ok = True

    agree = {}
    for name in ("astronaut", "chelsea", "coffee"):
        photo = getattr(skimage.data, name)()[:crop, :crop]
        ref = deblur(photo, model=cpu_net, channel_axis=-1, precision="float32")
        got = deblur(photo, model=net, channel_axis=-1)
        agree[name] = round(float(_psnr(ref, got)), 2)
    summary["agreement_db"] = agree
    worst = min(agree.values())
    ok &= worst >= 50
    print(
        f"agreement with CPU float32 ({policy.name} on {args.device}): {agree} dB "
        f"({'ok' if worst >= 50 else 'BELOW 50 dB'})"
    )

    timings = {}
    for label, shape in (("frame", frame_shape), ("large", (big, big))):
        image = _photo(big, shape)
        deblur(image[:128, :128], model=net, channel_axis=-1)  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        tile = auto_tile_size(net, device)
        _sync(device)
        t0 = time.perf_counter()
        out = deblur(image, model=net, channel_axis=-1)
        _sync(device)
        seconds = time.perf_counter() - t0
        timings[label] = {
            "shape": list(shape),
            "tile": tile,
            "seconds": round(seconds, 3),
            "mpx_per_s": round(shape[0] * shape[1] / 1e6 / seconds, 3),
            "peak_gib": round(_peak_gib(device), 3),
        }
        print(f"{label} {shape[0]} x {shape[1]}: {timings[label]}")
        if label == "large":
            reference = out
    summary["timings"] = timings

    image = _photo(big, (big, big))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        ballast = torch.empty(int(max(0, free - 1.5 * 2**30)), dtype=torch.uint8, device=device)
        model: torch.nn.Module = net
    else:
        ballast = None
        model = _simulated_oom(cpu_net, 256 * 256)
        reference = deblur(image, model=cpu_net, channel_axis=-1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            retried = deblur(image, model=model, channel_axis=-1, tile_size=big)
            error = None
        except MemoryError as err:
            retried, error = None, str(err)
    del ballast
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    same = bool(retried is not None and _psnr(retried, reference) >= 50)
    summary["oom_retry"] = {"warnings": messages, "error": error, "same_result": same}
    ok &= bool(messages) and same
    print(
        f"out-of-memory retry: {len(messages)} warning(s) {messages[:1]}, "
        f"result {'matches' if same else 'DIFFERS or failed: ' + str(error)}"
    )
    summary["ok"] = bool(ok)
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
