"""What the Deblur (SRN) widget decides, without napari, Qt or torch.

Everything here takes plain values (or any object with a napari layer's attributes) and is
tested without a viewer. One module per concern:

* :mod:`.layers`: which layers are accepted, and what their axes (T, Z, C, Y, X) mean;
* :mod:`.settings`: the widget's choices, each checked once, and the file that remembers them;
* :mod:`.models`: the model list, a model's card and tile step, the devices offered;
* :mod:`.run`: what a run does (compute now or lazy, channels, levels, intensity range), the
  summary line that says it, and the library's arguments for it;
* :mod:`.result`: the result layer's name, transform, display settings and metadata;
* :mod:`.words`: library messages in the widget's words, the status line, which warnings show.

The widget reads the names below from this package (``_logic.Settings``, ...).
"""

from .layers import (
    AXIS_LETTERS,
    LayerInfo,
    check_axes,
    check_layer,
    guess_axes,
    layer_info,
    move_axis,
)
from .models import (
    bundled_models,
    check_tile,
    describe_model,
    model_choices,
    quality_line,
    read_card,
    tile_step,
    usable_devices,
)
from .result import result_layer_kwargs
from .run import RunChoice, choose_run, deblur_options, decide, describe, zarr_axes
from .settings import (
    DEVICES,
    INTENSITY,
    MODES,
    NOT_REMEMBERED,
    PRECISIONS,
    SAMPLE_FRAMES,
    SETTINGS_ENV,
    WEIGHTS_FILE,
    Settings,
    load_settings,
    save_settings,
    settings_path,
)
from .words import computing_line, gui_words, worth_showing

__all__ = [
    "AXIS_LETTERS",
    "DEVICES",
    "INTENSITY",
    "MODES",
    "NOT_REMEMBERED",
    "PRECISIONS",
    "SAMPLE_FRAMES",
    "SETTINGS_ENV",
    "WEIGHTS_FILE",
    "LayerInfo",
    "RunChoice",
    "Settings",
    "bundled_models",
    "check_axes",
    "check_layer",
    "check_tile",
    "choose_run",
    "computing_line",
    "deblur_options",
    "decide",
    "describe",
    "describe_model",
    "guess_axes",
    "gui_words",
    "layer_info",
    "load_settings",
    "model_choices",
    "move_axis",
    "quality_line",
    "read_card",
    "result_layer_kwargs",
    "save_settings",
    "settings_path",
    "tile_step",
    "usable_devices",
    "worth_showing",
    "zarr_axes",
]
