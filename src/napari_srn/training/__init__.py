"""Training: ``napari_srn.train(TrainConfig(...))`` and ``napari-srn train``.

* :mod:`.config` — the frozen :class:`~.config.TrainConfig` (no torch needed);
* :mod:`.blur` — camera-shake kernels (numpy and scipy only);
* :mod:`.synth` — GoPro-style synthesis of a blurred crop from a sharp one;
* :mod:`.data` — pairs, sharp-only folders, zarr; crops, augmentation, validation split;
* :mod:`.loop` — the training loop: ``train()`` and its parts, the final weights file;
* :mod:`.checkpoint` — the resume checkpoint and the rule for what a resume may change;
* :mod:`.run_files` — the run folder: its file names, checks, CSV logs and curve;
* :mod:`.cli` — the ``train`` subcommand (argparse only).

Importing this package imports nothing else, so ``napari-srn --help`` stays fast.
"""
