"""OME-Zarr out: the resumable, chunk-by-chunk writer behind :func:`napari_srn.deblur_to_zarr`.

A store goes through these states (all under ``dest``):

1. ``dest`` is created (a new folder: napari-srn never writes into one it did not make) as a
   zarr group whose ``napari_srn`` attribute says ``status: "incomplete"`` with the run's
   fingerprint (source, model SHA-256, parameters); the same record is kept in
   ``dest/.napari-srn-work/run.json`` until the end, so the store stays known as napari-srn's
   if its group metadata is damaged. It carries no OME ``multiscales`` metadata yet, so no
   viewer mistakes it for a finished image.
2. Each stage is a dask array written chunk by chunk into a zarr array: the coarse SRN levels
   into float32 arrays under ``dest/.napari-srn-work/`` (read back from there by the next
   level, so memory stays bounded by a few tiles), the full-resolution result into ``dest/0``
   (zarr chunks are the tiles: one task writes one chunk, so parallel workers never write the
   same chunk), then the resolution pyramid ``dest/1``, ``dest/2``, ... (each a 2x2 mean of the
   level above, computed from the stored result, chunk by chunk), down to about one tile.
3. After each chunk is written, an empty marker file records it; a run started again with the
   same arguments skips every marked chunk and ends with the same result as an uninterrupted
   run. Only when every stage is written are the OME-NGFF 0.5 metadata added, the status set
   to ``"complete"`` and the work folder removed.

Every array carries zarr 3 ``dimension_names``, so ``ome-zarr-models validate`` accepts the
store. A different existing output is never overwritten without ``overwrite=True``; with it,
the replacement is written beside it (``<dest>.napari-srn-new``) and swapped in when complete
(:func:`.store.swap`). ``dest`` is resolved first: through a link, the target is what is locked and
replaced. Nothing that napari-srn did not create is ever deleted, renamed or truncated,
whatever its name (``<dest>.lock``, ``<dest>.napari-srn-old``, ...).

One module per concern; the names below are imported from the package
(``napari_srn.io.ome_zarr.OmeZarrSink``, ...):

* :mod:`.sink` — :class:`OmeZarrSink`, the output store of one run, composing the others, and
  :class:`Cancelled`;
* :mod:`.lock` — one writer per destination (``<dest>.lock``) and :class:`DestinationLocked`;
* :mod:`.store` — the store's ``napari_srn`` record, where a run writes (new, resumed, or
  beside an old result), and the swap of old and new stores, cut off or not;
* :mod:`.chunks` — each stage's zarr array, written chunk by chunk with a marker per chunk and
  checked on resume;
* :mod:`.ngff` — axis names (:func:`ngff_axes`), the resolution pyramid and the OME-NGFF
  metadata.
"""

from .lock import DestinationLocked
from .ngff import NGFF_ORDER, ngff_axes
from .sink import Cancelled, OmeZarrSink
from .store import STATUS_KEY, WORK

__all__ = [
    "NGFF_ORDER",
    "STATUS_KEY",
    "WORK",
    "Cancelled",
    "DestinationLocked",
    "OmeZarrSink",
    "ngff_axes",
]
