"""Sample data for napari's File > Open Sample menu (contributed in ``napari.yaml``)."""

from __future__ import annotations

from typing import Any

__all__ = ["SAMPLE_NAME", "make_sample_data"]

SAMPLE_NAME = "Blurred photo (napari-srn)"


def make_sample_data() -> list[tuple[Any, dict[str, Any]]]:
    """The embedded blurred photo as napari layer data.

    Returns
    -------
    list of (ndarray, dict)
        One image layer: the 512 x 512 x 3 uint8 array from
        :func:`napari_srn.sample.blurred_sample`, with metadata ``name`` and ``rgb=True``.
    """
    from ..sample import blurred_sample

    return [(blurred_sample(), {"name": SAMPLE_NAME, "rgb": True})]
