"""Blurred images made from sharp ones: the camera-shake and motion-blur synthesis that
training, the embedded sample (:mod:`napari_srn.sample`) and the held-out benchmark
(:mod:`napari_srn.evaluation`) share.

* :mod:`.kernels` — random camera paths and shake kernels (Boracchi & Foi), and convolving an
  image with one (numpy, scipy);
* :mod:`.params` — the settings of both syntheses, :class:`~.params.ShakeParams` and
  :class:`~.params.MotionParams` (TrainConfig's ``shake`` and ``motion`` groups default from
  them; no torch);
* :mod:`.shake` — GoPro-style synthesis of a blurred crop from a sharp one with a kernel;
* :mod:`.motion` — realistic motion blur: a moving camera and moving objects in linear light,
  with highlights, sensor noise, 8 bits and JPEG (torch's ``grid_sample``).

Importing this package imports nothing else.
"""
