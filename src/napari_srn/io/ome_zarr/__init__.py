"""OME-Zarr out: the resumable, chunk-by-chunk writer behind :func:`napari_srn.deblur_to_zarr`.

The writer is in :mod:`.sink` for now (its docstring describes a store's states); every name
below is imported from the package (``napari_srn.io.ome_zarr.OmeZarrSink``, ...).
"""

from .sink import (
    NGFF_ORDER,
    STATUS_KEY,
    WORK,
    Cancelled,
    DestinationLocked,
    OmeZarrSink,
    ngff_axes,
)

__all__ = [
    "NGFF_ORDER",
    "STATUS_KEY",
    "WORK",
    "Cancelled",
    "DestinationLocked",
    "OmeZarrSink",
    "ngff_axes",
]
