"""What the widget says: library messages in its words, its status line, which warnings show.

The library speaks in arguments and flags (``tile_size=``, ``--overwrite``); the widget's user
sees controls. :func:`gui_words` rewrites a library message for them; :func:`computing_line` is
the status line while a lazy result computes; :func:`worth_showing` picks the warnings raised in
a worker that become notifications.
"""

from __future__ import annotations

__all__ = ["computing_line", "gui_words", "worth_showing"]


#: Library spellings in messages, and what the widget's user does instead.
_GUI_WORDS = (
    ("pass overwrite=True (--overwrite) to replace it", "tick 'replace an existing output'"),
    ("overwrite=True (--overwrite)", "'replace an existing output'"),
    ("use device='cpu' or device=None", "choose device cpu or auto"),
    ("or leave tile_size unset to choose it automatically", "or set tile to 0 (automatic)"),
    ("or None to choose from free memory", "or 0 (automatic)"),
    ("use tile_size=", "set tile to "),
    ("tile_size=", "tile "),
    ("tile_size", "tile"),
    ("precision='float32'", "precision float32"),
)


def gui_words(message: str) -> str:
    """A library message in the widget's words (its controls, not arguments or flags)."""
    for code, gui in _GUI_WORDS:
        message = message.replace(code, gui)
    return message


def computing_line(name: str, frame: tuple[int, ...], waiting: int = 0) -> str:
    """The status line while a lazy result ``name`` computes ``frame`` (its index on the
    leading axes; ``()`` for a single image, which has no frame number)."""
    where = f"frame {', '.join(map(str, frame))} of " if frame else ""
    more = f" ({waiting} more queued)" if waiting > 0 else ""
    return f"Computing {where}'{name}'{more}..."


def worth_showing(category: type[Warning]) -> bool:
    """Whether a warning raised in a worker becomes a notification: the library's own
    (UserWarning, RuntimeWarning) do; third-party deprecations, which napari's worker threads
    catch too, do not."""
    return not issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))
