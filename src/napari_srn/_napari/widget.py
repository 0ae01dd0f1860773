"""The "Deblur (SRN)" dock widget (contributed in ``napari.yaml``).

A thin skin: the decisions live in :mod:`._logic` and the work in :mod:`._jobs`, which run in
napari's worker threads. Nothing here imports torch; the first run does.
"""

from __future__ import annotations

import threading
from typing import Any

from magicgui.types import FileDialogMode
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QObject, QTimer, Signal, Slot

from . import _jobs, _logic
from ._frames import BackgroundFrames

__all__ = ["DeblurWidget"]


class _Relay(QObject):
    """Carries a lazy result's "frame ready" / "frame failed" from its background thread to the
    main thread (a queued Qt connection: the slots run in the thread this object lives in)."""

    ready = Signal(object)
    failed = Signal(object, object)

    def __init__(self, on_ready: Any, on_failed: Any) -> None:
        super().__init__()
        self._on_ready, self._on_failed = on_ready, on_failed
        self.ready.connect(self._ready)
        self.failed.connect(self._failed)

    @Slot(object)
    def _ready(self, frame: Any) -> None:
        self._on_ready(frame)

    @Slot(object, object)
    def _failed(self, frame: Any, err: Any) -> None:
        self._on_failed(frame, err)


class _ClosedWatch(QObject):
    """Calls ``on_closed`` when the widget loses its dock: napari's close button (x) takes the
    widget out of its dock (``setParent(None)``) without destroying it."""

    def __init__(self, widget: Any, on_closed: Any) -> None:
        super().__init__(widget)
        self._on_closed, self._docked = on_closed, widget.parent() is not None
        widget.installEventFilter(self)

    def eventFilter(self, obj: Any, event: Any) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            if obj.parent() is not None:
                self._docked = True
            elif self._docked:
                self._on_closed()
        return False


class DeblurWidget(Container):
    """Deblur an image layer with SRN-DeblurNet: now (with progress and Cancel) or lazily.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose image layers are offered, and where the result layer goes.

    Attributes
    ----------
    model_object : torch.nn.Module or None
        For scripts and tests: a loaded model that replaces the model choice.
    worker : the running napari worker, or None.
    last_outcome : str or None
        ``"added"``, ``"cancelled"`` or ``"failed"``: how the last run ended.
    prefetch : int
        Frames on each side of the viewed one that a lazy result computes next (default 1).
    """

    prefetch = 1

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.model_object: Any = None
        self.worker: Any = None
        self.last_outcome: str | None = None
        self._cancel = threading.Event()
        self._saving: str | None = None
        self._closed = False
        s = _logic.load_settings()
        self._add_image_choices(s)
        self._add_run_choices(s)
        self._add_output_choices()
        self._add_actions()
        self.extend(
            [
                self.layer,
                self.axes,
                self.model,
                self.weights,
                self.card,
                self.device,
                self.tile_size,
                self.precision,
                self.intensity,
                self.mode,
                self.save,
                self.save_path,
                self.overwrite,
                self.replace,
                self.plan,
                self.status,
                self.run_button,
                self.cancel_button,
                self.defaults_button,
                self.progress,
            ]
        )

        self._lazy_results: list[tuple[Any, list[BackgroundFrames], _Relay]] = []
        self._status_timer = QTimer()
        self._status_timer.setInterval(250)
        self._status_timer.timeout.connect(self._update_status)
        self._gone = False  # the widget (with the viewer) was destroyed
        self._connect()
        active = self._viewer.layers.selection.active
        if isinstance(active, Image):
            self.layer.value = active
        self._guess_axes()
        self._refresh()

    # ------------------------------------------------------------------ building

    def _add_image_choices(self, s: _logic.Settings) -> None:
        """The layer, its axes, and the model (a bundled one or a weights file) with its card."""
        models = _logic.model_choices()
        values = [value for _, value in models]
        self.layer = ComboBox(label="image", choices=self._image_layers)
        self.layer.tooltip = "The image layer to deblur"
        self.axes = LineEdit(label="axes", value="")
        self.axes.tooltip = (
            "One letter per dimension of the layer: T time, Z depth, C channels, Y X the image "
            "(e.g. TYX, ZYX, YXC, CYX). C of 3 or 4 entries is colour (RGB, RGBA: the alpha is "
            "kept); other channel counts are deblurred one by one as gray images. Guessed from "
            "the layer; correct it if the guess is wrong"
        )
        self.model = ComboBox(
            label="model", choices=models, value=s.model if s.model in values else "default"
        )
        self.model.tooltip = "The network's weights: a bundled model, or a .safetensors file"
        self.weights = FileEdit(
            label="weights", mode=FileDialogMode.EXISTING_FILE, filter="*.safetensors"
        )
        self.weights.tooltip = "A napari-srn .safetensors weights file (napari-srn train)"
        if s.weights:
            self.weights.set_value(s.weights)
        self.card = Label(label="")

    def _add_run_choices(self, s: _logic.Settings) -> None:
        """How the model runs: device, tile, precision, intensity mapping, now or lazily."""
        devices = _logic.usable_devices()
        self.device = ComboBox(
            label="device", choices=devices, value=s.device if s.device in devices else "auto"
        )
        self.device.tooltip = "auto: the GPU when there is one, else the CPU"
        self.tile_size = SpinBox(
            label="tile (0: auto)", min=0, max=8192, step=16, value=s.tile_size
        )
        self.tile_size.tooltip = (
            "Pixels per model call, a multiple of the model's step (16 for the bundled models); "
            "0: automatic, from free memory"
        )
        self.precision = ComboBox(label="precision", choices=_logic.PRECISIONS, value=s.precision)
        self.precision.tooltip = (
            "auto: bfloat16 where the CPU or GPU computes it natively (several times faster, "
            "visually identical), float32 elsewhere; float32: the reference result; "
            "float16: GPUs only"
        )
        self.intensity = ComboBox(label="intensities", choices=_logic.INTENSITY, value=s.intensity)
        self.intensity.tooltip = (
            "Which values map to the model's 0..1 (others are clipped). auto: 0..255 for 8 bit, "
            "the image's own min..max in memory, and for dask/zarr stacks the min..max of "
            f"{_logic.SAMPLE_FRAMES} frames spread over the stack; contrast limits: the layer's "
            "(set them in the layer controls to give your own); data type range: e.g. 0..65535"
        )
        self.mode = ComboBox(label="mode", choices=_logic.MODES, value=s.mode)
        self.mode.tooltip = (
            "auto: compute a single in-memory image now; stacks, dask/zarr and multiscale "
            "layers lazily (each frame when viewed). Not remembered: each session starts at auto"
        )

    def _add_output_choices(self) -> None:
        """Where the result goes: an OME-Zarr folder or memory, and which layer it replaces."""
        self.save = CheckBox(text="save to OME-Zarr", value=False)
        self.save.tooltip = (
            "Write the result to an OME-Zarr folder, chunk by chunk (resumable), and show it "
            "from there"
        )
        self.save_path = FileEdit(
            label="output", mode=FileDialogMode.OPTIONAL_FILE, filter="*.zarr"
        )
        self.save_path.tooltip = "The .zarr folder to write (a new one, or this same run's)"
        self.overwrite = CheckBox(text="replace an existing output", value=False)
        self.overwrite.tooltip = (
            "Replace an OME-Zarr output of another run (only once the new one is complete); "
            "a folder napari-srn did not write is never replaced"
        )
        self.replace = CheckBox(text="replace the previous result layer", value=True)
        self.replace.tooltip = (
            "Remove this layer's earlier '(deblurred)' result when the new one is added, "
            "instead of adding '[1]', '[2]', ..."
        )

    def _add_actions(self) -> None:
        """The buttons, the plan and status lines, and the progress bar."""
        self.defaults_button = PushButton(text="Restore defaults")
        self.defaults_button.tooltip = "Set every choice back to its default"
        self.plan = Label(label="")
        self.status = Label(label="", value="")
        self.run_button = PushButton(text="Deblur")
        self.run_button.tooltip = "Deblur the chosen layer with these settings"
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.cancel_button.tooltip = "Stop after the current tile; no layer is added"
        self.progress = ProgressBar(label="", value=0, visible=False)
        for label in (self.card, self.plan):
            label.native.setWordWrap(True)

    def _connect(self) -> None:
        """Wire the buttons, the choices and the viewer's layer list to the widget."""
        self.native.destroyed.connect(self._on_destroyed)
        self._closed_watch = _ClosedWatch(self.native, self._on_closed)
        self.run_button.changed.connect(lambda: self.run())
        self.cancel_button.changed.connect(self.cancel)
        self.defaults_button.changed.connect(self.restore_defaults)
        self.changed.connect(self._refresh)
        events = self._viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self.reset_choices)
        events.removed.connect(self._on_layer_removed)
        events.inserted.connect(self._watch_layer)
        for layer in self._viewer.layers:
            self._watch_layer(layer)
        self.layer.changed.connect(self._guess_axes)

    # ------------------------------------------------------------------ state

    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _watch_layer(self, event_or_layer: Any) -> None:
        layer = getattr(event_or_layer, "value", event_or_layer)
        layer.events.name.connect(self.reset_choices)
        if isinstance(layer, Image):  # the lazy intensity range follows the contrast limits
            layer.events.contrast_limits.connect(self._refresh)

    def restore_defaults(self) -> None:
        """Every choice back to its default (the remembered settings follow at the next run)."""
        d = _logic.Settings()
        self.model.value = d.model
        self.device.value = d.device if d.device in self.device.choices else "auto"
        self.tile_size.value = d.tile_size
        self.mode.value = d.mode
        self.precision.value = d.precision
        self.intensity.value = d.intensity
        self.save.value = self.overwrite.value = False
        self.replace.value = True
        self._guess_axes()

    def _guess_axes(self, *_: Any) -> None:
        """Fill the axes field from the chosen layer (its axis labels, rgb flag and shape)."""
        layer = self.layer.value
        if layer is None:
            return
        info = _logic.layer_info(layer)
        if info.kind == "image":
            self.axes.value = _logic.guess_axes(info, getattr(layer, "axis_labels", None))

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.worker is not None

    def settings(self) -> _logic.Settings:
        """The current choices as :class:`~._logic.Settings`."""
        weights = self.weights.value
        return _logic.Settings(
            model=self.model.value,
            weights=str(weights) if weights and str(weights) != "." else "",
            device=self.device.value,
            tile_size=int(self.tile_size.value),
            mode=self.mode.value,
            precision=self.precision.value,
            intensity=self.intensity.value,
        )

    def _save_target(self) -> str | None:
        path = self.save_path.value
        return str(path) if self.save.value and path and str(path) != "." else None

    def _step(self, s: _logic.Settings) -> int | None:
        """The multiple a tile must be for the chosen (or given) model."""
        if self.model_object is not None:
            return _logic.tile_step(self.model_object)
        return _logic.tile_step(s.weights if s.model == _logic.WEIGHTS_FILE else s.model)

    def _refresh(self, *_: Any) -> None:
        s = self.settings()
        use_file = s.model == _logic.WEIGHTS_FILE
        self.weights.visible = use_file
        self.save_path.visible = self.overwrite.visible = self.save.value
        short, full, provisional = _logic.describe_model(s.weights if use_file else s.model)
        self.card.value, self.card.tooltip = short, full
        self.card.native.setStyleSheet("color: #e0a030;" if provisional else "")
        layer = self.layer.value
        self.run_button.enabled = not self.running
        if layer is None:
            self.plan.value = "Open or choose an image layer."
            return
        if self.save.value and self._save_target() is None:
            self.plan.value = (
                "Choose an output .zarr folder for 'save to OME-Zarr', or untick it to deblur "
                "without saving."
            )
            self.run_button.enabled = False
            return
        try:
            choice = _logic.choose_run(
                _logic.layer_info(layer), s, self._save_target(), self.axes.value, self._step(s)
            )
        except ValueError as err:
            self.plan.value = _logic.gui_words(str(err))
            self.run_button.enabled = False  # the line says what to change
        else:
            self.plan.value = choice.summary

    # ------------------------------------------------------------------ running

    def run(self, layer: Any = None) -> None:
        """Deblur ``layer`` (default: the chosen image layer) with the current settings.

        Problems are shown as napari notifications; the result arrives as a new layer.
        """
        if self.running:
            show_info("Deblur (SRN) is already running; cancel it first")
            return
        layer = self.layer.value if layer is None else layer
        if layer is None:
            show_error("Deblur (SRN): open or choose an image layer first")
            return
        if self.save.value and self._save_target() is None:
            show_error(
                "Deblur (SRN): 'save to OME-Zarr' is ticked but no output folder is chosen; "
                "choose one, or untick it"
            )
            return
        settings = self.settings()
        try:
            info = _logic.layer_info(layer)
            choice = _logic.choose_run(
                info, settings, self._save_target(), self.axes.value, self._step(settings)
            )
            options = _logic.deblur_options(settings, choice)
            if self.model_object is not None:  # a loaded model replaces the model choice
                options = options.replace(model=self.model_object)
            if choice.save_to:
                axes = _logic.zarr_axes(choice)
        except (ValueError, TypeError) as err:
            show_error(f"Deblur (SRN): {_logic.gui_words(str(err))}")
            return
        try:
            _logic.save_settings(settings)
        except OSError as err:
            show_warning(f"Deblur (SRN) could not remember its settings: {err}")

        levels = list(layer.data) if info.multiscale else [layer.data]
        if choice.channels_first is not None:  # each channel a gray frame: C goes first
            levels = [_logic.move_axis(level, choice.channels_first, 0) for level in levels]
        color = choice.channel_axis is not None
        self._cancel = threading.Event()
        if choice.save_to:
            worker = create_worker(
                _jobs.zarr_job, levels[0], choice.save_to, self._cancel,
                axes=axes, rgb=color, overwrite=bool(self.overwrite.value),
                sample_range=choice.sample_range, options=options,
                _progress={"desc": f"Deblurring {info.name}"}, _start_thread=False,
                _ignore_errors=True,
            )  # fmt: skip
        elif choice.lazy:
            worker = create_worker(
                _jobs.lazy_job, levels if choice.levels == "each level" else levels[:1],
                rgb=color, sample_range=choice.sample_range, options=options,
                _progress={"desc": f"Preparing lazy deblur of {info.name}"}, _start_thread=False,
                _ignore_errors=True,
            )  # fmt: skip
        else:
            worker = create_worker(
                _jobs.compute_job, levels[0], options=options,
                _progress={"desc": f"Deblurring {info.name}"}, _start_thread=False,
                _ignore_errors=True,
            )  # fmt: skip
        self.worker, self._saving = worker, choice.save_to
        result_kwargs = {"layer": layer, "choice": choice}
        if hasattr(worker, "yielded"):
            worker.yielded.connect(self._on_progress)
            worker.aborted.connect(self._on_aborted)
        worker.returned.connect(lambda outcome: self._on_returned(outcome, **result_kwargs))
        worker.errored.connect(self._on_errored)
        worker.warned.connect(self._on_warning)
        worker.finished.connect(self._on_finished)
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.progress.visible = True
        self.progress.value, self.progress.max = 0, 0  # busy until the first tile
        self.last_outcome = None
        worker.start()

    def cancel(self) -> None:
        """Stop the running job between tiles; no layer is added."""
        if self.worker is not None:
            self._cancel.set()
            self.worker.quit()

    def _on_progress(self, step: Any) -> None:
        if self._closed:
            return
        self.progress.max = step.total
        self.progress.value = step.done
        pbar = getattr(self.worker, "pbar", None)
        if pbar is not None:
            if pbar.total != step.total:
                pbar.total = step.total
            pbar.update(step.done - pbar.n)

    def _on_closed(self) -> None:
        """The dock was closed (its x): stop a running job and add nothing. Lazy results
        already added keep computing the frames viewed."""
        self._closed = True
        self.cancel()

    def _on_destroyed(self, *_args: Any) -> None:
        """The widget is destroyed (with the viewer): also stop computing lazy frames."""
        self._gone = True
        self._on_closed()
        for _, levels, _ in self._lazy_results:
            for frames in levels:
                frames.close()

    def _on_layer_removed(self, event: Any) -> None:
        """A lazy result's layer was deleted: stop computing its frames."""
        for entry in list(self._lazy_results):
            if entry[0] is event.value:
                for frames in entry[1]:
                    frames.close()
                self._lazy_results.remove(entry)

    def _update_status(self) -> None:
        """Which lazy result is computing a frame now ("" when none)."""
        if self._gone:
            self._status_timer.stop()
            return
        busy = []
        for result, levels, _ in self._lazy_results:
            for frames in levels:
                if frames.computing is not None:
                    waiting = frames.pending() - 1
                    busy.append(_logic.computing_line(result.name, frames.computing, waiting))
        self.status.value = " ".join(busy)
        self.status.visible = bool(busy)
        if not self._lazy_results:
            self._status_timer.stop()

    def _on_returned(self, outcome: _jobs.Outcome, *, layer: Any, choice: _logic.RunChoice) -> None:
        if self._closed:
            return
        if self._cancel.is_set():  # cancelled after the last tile: still add nothing
            self._on_aborted()
            return
        kwargs = _logic.result_layer_kwargs(layer, outcome.model, choice)
        data = outcome.data
        if choice.channels_first is not None:  # C back where the layer has it
            move = lambda a: _logic.move_axis(a, 0, choice.channels_first)  # noqa: E731
            data = [move(a) for a in data] if isinstance(data, list) else move(data)
        if isinstance(data, list):
            data = data if kwargs["multiscale"] else data[0]
        trailing_c = choice.channel_axis is not None or (
            choice.channels_first is not None and choice.axes.endswith("C")
        )
        background: list[BackgroundFrames] = []
        relay = None
        if choice.lazy and not choice.save_to:  # frames computed off the main thread, when viewed
            relay = _Relay(lambda frame: None, lambda frame, err: None)
            levels = data if isinstance(data, list) else [data]
            background = [
                BackgroundFrames(
                    level,
                    frame_ndim=3 if trailing_c else 2,
                    on_ready=relay.ready.emit,
                    on_error=relay.failed.emit,
                    prefetch=self.prefetch,
                )
                for level in levels
            ]
            data = background if isinstance(data, list) else background[0]
        # added hidden, then shown: a new layer is sliced at frame 0 before the viewer gives it
        # the current position, which would deblur frame 0 of a lazy result for nothing
        previous = [
            other
            for other in self._viewer.layers
            if other.name == kwargs["name"]
            or (other.name.startswith(kwargs["name"] + " [") and other.name.endswith("]"))
        ]
        result = None
        try:
            if self.replace.value:
                for other in previous:
                    self._viewer.layers.remove(other)
            result = self._viewer.add_image(data, **kwargs, visible=False)
            result.visible = True
        except Exception as err:  # a notification, not a traceback, and no half-made layer
            for frames in background:
                frames.close()
            if result is not None and result in self._viewer.layers:
                self._viewer.layers.remove(result)
            self.last_outcome = "failed"
            show_error(f"Deblur (SRN) could not add the result layer: {err}")
            return
        self.last_outcome = "added"
        if relay is not None:
            shown = {"any": False}

            def on_ready(frame: Any, result: Any = result) -> None:
                shown["any"] = True
                if not self._gone and result in self._viewer.layers:
                    result.refresh()

            def on_failed(frame: Any, err: Any, result: Any = result) -> None:
                if self._gone:
                    return
                if not shown["any"] and result in self._viewer.layers:
                    self._viewer.layers.remove(result)  # nothing of it ever worked
                    show_error(f"Deblur (SRN) could not compute the result: {err}")
                elif result in self._viewer.layers:
                    where = ", ".join(map(str, frame)) or "the image"
                    show_error(f"Deblur (SRN) could not compute frame {where}: {err}")

            relay._on_ready, relay._on_failed = on_ready, on_failed
            self._lazy_results.append((result, background, relay))
            self._status_timer.start()

    def _on_errored(self, err: BaseException) -> None:
        if type(err).__name__ == "Cancelled":  # napari_srn.Cancelled, from the OME-Zarr writer
            self.last_outcome = "cancelled"
            # the way on first: a notification may cut a long message
            show_info(f"Deblur (SRN) cancelled: run again with the same settings to resume. {err}")
            return
        self.last_outcome = "failed"
        show_error(f"Deblur (SRN) failed: {_logic.gui_words(str(err))}")

    def _on_warning(self, warning: tuple) -> None:  # warnings.showwarning's arguments
        message, category = warning[:2]
        if _logic.worth_showing(category):
            show_warning(f"Deblur (SRN): {_logic.gui_words(str(message))}")

    def _on_aborted(self) -> None:
        self._cancel.set()  # also stops an OME-Zarr writer (napari's own Cancel quits the worker)
        self.last_outcome = "cancelled"
        if self._saving:  # the way on first: a notification may cut a long message
            show_info(
                "Deblur (SRN) cancelled: run again with the same settings to resume "
                f"{self._saving} (incomplete); no layer was added."
            )
        else:
            show_info("Deblur (SRN) cancelled; no layer was added.")

    def _on_finished(self) -> None:
        self.worker = None
        if self._closed:
            return
        self.cancel_button.enabled = False
        self.progress.visible = False
        self._refresh()  # enables Deblur again, unless the settings are incomplete
        if self.last_outcome is None:  # a function worker quit before returning
            self._on_aborted()
