"""Training: ``napari_srn.train(TrainConfig(...))`` and ``napari-srn train``.

The config (no torch needed):

* :mod:`.config` — the frozen :class:`~.config.TrainConfig`, each field declared once, and
  :func:`~.config.config_from_file`;
* :mod:`.config_checks` — the checks its fields declare and the rules between fields;
* :mod:`.config_types` — YAML and command-line strings to field types;
* :mod:`.config_file` — the YAML file, read with limits and written atomically.

The data (:mod:`.data`; the blur itself is synthesised by :mod:`napari_srn.synthesis`):

* :mod:`.data.sources` — pairs, sharp-only folders, zarr; the validation split;
* :mod:`.data.images` — reading images and zarr frames, the cache, the map to [0, 1];
* :mod:`.data.datasets` — random training crops and fixed validation crops;
* :mod:`.data.loader` — the batches of each step and the ``DataLoader``.

The run:

* :mod:`.loop` — :func:`~.loop.train`: the loop and its named parts;
* :mod:`.session` — the run's state and how it is built or restored (model, optimizer,
  schedule, loss scaler, moving average);
* :mod:`.precision` — ``amp`` and ``amp_dtype`` through inference's precision policy;
* :mod:`.metrics` — the multi-scale loss and the validation scores;
* :mod:`.checkpoint` — the resume checkpoint and the rule for what a resume may change;
* :mod:`.run_files` — the run folder: its file names, checks, CSV logs and curve;
* :mod:`.card` — the model card of the final weights;
* :mod:`.plot` — the curve of loss and validation PSNR;
* :mod:`.export` — a checkpoint (at any step) as a weights file;
* :mod:`.surgery` — a trained network widened, its dead decoder stages found and restarted;
* :mod:`.cli` — the ``train`` subcommand (argparse only).

Importing this package imports nothing else, so ``napari-srn --help`` stays fast.
"""
