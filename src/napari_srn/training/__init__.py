"""Training: ``napari_srn.train(TrainConfig(...))`` and ``napari-srn train``.

* :mod:`.config` — the frozen :class:`~.config.TrainConfig` (no torch needed);
* :mod:`.blur` — camera-shake kernels (numpy and scipy only);
* :mod:`.synth` — GoPro-style synthesis of a blurred crop from a sharp one;
* :mod:`.data` — pairs, sharp-only folders, zarr; crops, augmentation, validation split;
* :mod:`.loop` — the training loop, checkpoints, logs, the final weights file;
* :mod:`.cli` — the ``train`` subcommand (argparse only).

Importing this package imports nothing else, so ``napari-srn --help`` stays fast.
"""
