"""The deblurring pipeline: one way through, for ``deblur``, ``iter_deblur``, ``deblur_to_zarr``,
the command line and the napari widget.

Modules import one way::

    options    the settings, one frozen DeblurOptions (no torch)
      -> plan      everything decided before any pixel: the network's facts, device and
                   precision (resolved once), layout, channel groups, tile, intensity range
      -> eager     the in-memory runner (level by level, tiles from napari_srn.tiling)
       | lazy      the same tiles as a dask graph, coarse levels handed to a Sink
      -> api       deblur(), iter_deblur()
       | to_zarr   deblur_to_zarr(), iter_deblur_to_zarr(): lazy graph + io.ome_zarr's sink

beside the leaves they use: :mod:`.validate` (the image itself), :mod:`.intensity` (values to
the model's 0..1 and back), :mod:`.precision` (the device and arithmetic policy) and
:mod:`.memory` (what this process may allocate). The public names are re-exported from
:mod:`napari_srn`; importing this package imports nothing heavy.
"""
