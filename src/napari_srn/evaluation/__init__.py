"""Deblurring quality on held-out photographs: blurred input vs non-blind Wiener vs a model.

The benchmark is generated, reproducibly, from photographs napari-srn never trains on:
scikit-image's bundled colour photographs (:data:`PHOTOS`), or a folder of PNG files such as
the ``mate-backgrounds`` held-out set that ``scripts/data/prepare_photos.py`` writes to
:data:`HELDOUT_MATE`. Each photo's central crop is blurred by seeded random camera-shake
kernels of 13 to 25 pixels, given mild Gaussian noise (sigma 0.5-1 % of the range) and rounded
to uint8. Scores are mean PSNR/SSIM over the pairs (scikit-image metrics, data range 255).

``scripts/evaluate/eval_deblur.py`` is the command line on top of this package and
``scripts/release/ship_default.py`` uses it to decide whether a model may become the default.
One module per concern; every name below is imported from the package
(``napari_srn.evaluation.make_benchmark``, ...):

* :mod:`.benchmark` — the synthetic benchmark (:class:`Pair`, :func:`make_benchmark`), the
  Wiener baseline (:func:`baselines`) and a model's scores on it (:func:`model_rows`);
* :mod:`.real_folder` — a real-blur folder read: its sets of pairs (:class:`RealPair`,
  :func:`real_sets`) and its photographs without ground truth (:func:`real_no_truth`);
* :mod:`.real_scoring` — scores on real blur (:class:`RealScore`, :func:`real_baselines`,
  :func:`real_scores`), their table (:func:`real_table`) and gains (:func:`real_gains`);
* :mod:`.tables` — a model's name in the rows, and the rows as text (:func:`format_table`);
* :mod:`.figures` — the before/after grid (:func:`grid_image`) and the contact sheet
  (:func:`contact_sheet`).

Real blur
---------
The real-blur modules score blur that nobody on this project made: a folder (normally
``../shared/realblur``, never part of the repository) laid out as

* ``gopro/blur``, ``gopro/sharp``: GoPro test frames, scored on the whole frame; the published
  outputs of other methods in ``gopro/published/<Method>/<frame>.png`` are scored beside ours;
* ``crops/blur``, ``crops/sharp``: real captures and frame averages, JPEG crops;
* ``levin/blur``, ``levin/sharp``: Levin et al.'s grey images, one sharp file per blurred one;
* ``real_no_truth/``: real photographs without ground truth, for a contact sheet.

``crops`` and ``levin`` are scored after the best integer shift within +-:data:`MAX_SHIFT` px
(some of their pairs are a few pixels apart), chosen by PSNR for every image and every method
alike, on the frame trimmed by :data:`MAX_SHIFT` px on each side. :func:`real_sets` reads the
folder, :func:`real_baselines` and :func:`real_scores` give one :class:`RealScore` per image
and method, :func:`real_table` the per-set means, and :func:`contact_sheet` the figure.

Examples
--------
>>> from napari_srn import load_model
>>> from napari_srn.evaluation import baselines, format_table, make_benchmark, model_rows
>>> pairs = make_benchmark()  # doctest: +SKIP
>>> rows, balance, wiener = baselines(pairs)  # doctest: +SKIP
>>> more, outputs = model_rows(load_model("default", device="cpu"), pairs)  # doctest: +SKIP
>>> print(format_table({**rows, **more}))  # doctest: +SKIP
>>> from napari_srn.evaluation import real_baselines, real_scores, real_sets, real_table
>>> sets = real_sets("../shared/realblur")  # doctest: +SKIP
>>> scores = real_baselines(sets) + real_scores(load_model("default", device="cpu"), sets)
... # doctest: +SKIP
>>> print(format_table(real_table(scores)))  # doctest: +SKIP
"""

from .benchmark import (
    BALANCES,
    HELDOUT_MATE,
    MATE_SEED,
    PHOTOS,
    SEED,
    Pair,
    baselines,
    benchmark_photos,
    gray16_scores,
    make_benchmark,
    model_rows,
    on_sharp_input,
    restore,
    score,
    wiener_deconvolve,
)
from .figures import contact_sheet, grid_image, textured_window
from .real_folder import MAX_SHIFT, REAL_SETS, RealPair, real_no_truth, real_sets
from .real_scoring import (
    REAL_PAIRS,
    RealScore,
    best_shift,
    real_baselines,
    real_gains,
    real_score,
    real_scores,
    real_table,
)
from .tables import format_table, model_name

__all__ = [
    "BALANCES",
    "HELDOUT_MATE",
    "MATE_SEED",
    "MAX_SHIFT",
    "PHOTOS",
    "REAL_PAIRS",
    "REAL_SETS",
    "SEED",
    "Pair",
    "RealPair",
    "RealScore",
    "baselines",
    "benchmark_photos",
    "best_shift",
    "contact_sheet",
    "format_table",
    "gray16_scores",
    "grid_image",
    "make_benchmark",
    "model_name",
    "model_rows",
    "on_sharp_input",
    "real_baselines",
    "real_gains",
    "real_no_truth",
    "real_score",
    "real_scores",
    "real_sets",
    "real_table",
    "restore",
    "score",
    "textured_window",
    "wiener_deconvolve",
]
