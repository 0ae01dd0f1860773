"""Packaging: the core imports without napari/Qt, and npe2 finds the plugin manifest.

Checked both in the current (editable) install and in a wheel built from the source tree and
installed into a separate folder, so a manifest left out of the package data fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pytest

DIST_NAME = "napari-srn"
SAMPLE_COMMAND = "napari-srn.make_sample_data"
SAMPLE_KEY = "blurred_photo"
SAMPLE_NAME = "Blurred photo (napari-srn)"  # the layer
SAMPLE_MENU = "Blurred photo"  # the manifest's display name: napari adds " (napari-srn)"
REPO = Path(__file__).resolve().parents[1]

# top-level modules that only the napari layer (napari_srn._napari) may import
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")


def _run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (this venv's) and return its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _loaded_top_level_modules(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(_run_python(code).splitlines()[-1])
    return {name.split(".")[0] for name in loaded} | {
        name for name in loaded if name.startswith("napari_srn.")
    }


# --------------------------------------------------------------------------- import boundary


def test_plain_import_loads_neither_gui_nor_torch():
    loaded = _loaded_top_level_modules("import napari_srn")
    assert "napari_srn" in loaded
    assert loaded.isdisjoint({*GUI_MODULES, "torch"}), loaded & {*GUI_MODULES, "torch"}


@pytest.mark.parametrize(
    "statement",
    [
        "import napari_srn",
        "from napari_srn import deblur, load_model",
        "import napari_srn.cli",
        "import napari_srn.sample; napari_srn.sample.blurred_sample()",
    ],
)
def test_core_does_not_import_napari_or_qt(statement):
    loaded = _loaded_top_level_modules(statement)
    assert loaded.isdisjoint(GUI_MODULES), sorted(loaded & set(GUI_MODULES))
    assert "napari_srn._napari" not in loaded


@pytest.mark.parametrize(
    "statement",
    [
        "import napari_srn.io.files, napari_srn.io.zarr, napari_srn.io.ome_zarr",
        "import napari_srn.model.registry, napari_srn.training.config",
        "import napari_srn._napari._logic",
    ],
)
def test_torch_free_layers_do_not_import_torch(statement):
    # docs/architecture.md: io/, the registry, the training config and the widget's logic
    # are torch-free, so the widget opens and `train --help` answers without loading torch
    loaded = _loaded_top_level_modules(statement)
    assert "torch" not in loaded, sorted(m for m in loaded if m.startswith("napari_srn."))


def test_core_api_import_loads_torch():
    # sanity check of the test above: the subprocess really imported the core
    loaded = _loaded_top_level_modules("from napari_srn import deblur, load_model")
    assert {"torch", "napari_srn.inference.api"} <= loaded


# --------------------------------------------------------------------------- manifest


def _manifest_path() -> Path:
    return Path(str(resources.files("napari_srn") / "napari.yaml"))


def _check_sample_contribution(manifest) -> None:
    assert manifest.name == DIST_NAME
    assert manifest.display_name == DIST_NAME
    commands = {c.id: c for c in manifest.contributions.commands or ()}
    assert commands[SAMPLE_COMMAND].python_name == "napari_srn._napari.sample:make_sample_data"
    samples = manifest.contributions.sample_data or []
    assert [(s.key, s.display_name, s.command) for s in samples] == [
        (SAMPLE_KEY, SAMPLE_MENU, SAMPLE_COMMAND)
    ]


def _check_sample_layer_data(layers) -> None:
    assert isinstance(layers, list) and len(layers) == 1
    data, meta = layers[0]
    assert isinstance(data, np.ndarray)
    assert data.shape == (512, 512, 3) and data.dtype == np.uint8
    assert meta == {"name": SAMPLE_NAME, "rgb": True}


def test_manifest_file_is_valid():
    from npe2 import PluginManifest

    path = _manifest_path()
    manifest = PluginManifest.from_file(path)  # what `npe2 validate` does: raises on bad yaml
    manifest.validate_imports()  # `npe2 validate --imports`: every python_name imports
    _check_sample_contribution(manifest)
    # every command a contribution names is declared
    declared = {c.id for c in manifest.contributions.commands or ()}
    assert {s.command for s in manifest.contributions.sample_data or ()} <= declared


def test_installed_distribution_declares_manifest_entry_point():
    eps = metadata.distribution(DIST_NAME).entry_points
    ours = [ep for ep in eps if ep.group == "napari.manifest"]
    assert [ep.value for ep in ours] == ["napari_srn:napari.yaml"]
    assert _manifest_path().is_file()


def test_npe2_finds_manifest_in_current_install():
    from npe2 import PluginManager, PluginManifest

    manifest = PluginManifest.from_distribution(DIST_NAME)
    _check_sample_contribution(manifest)
    assert manifest._source_file == _manifest_path().resolve()
    assert manifest.package_metadata.version == metadata.version(DIST_NAME)

    # the same path napari takes: discover, then run the sample-data command
    pm = PluginManager()  # a private manager, not napari's global instance
    pm.discover()
    assert DIST_NAME in pm
    # npe2 activates plugins lazily only through its global instance; this one is private
    pm.activate(DIST_NAME)
    samples = dict(pm.iter_sample_data())[DIST_NAME]
    assert [s.key for s in samples] == [SAMPLE_KEY]
    func = samples[0].get_callable(_registry=pm.commands)
    assert callable(func)
    _check_sample_layer_data(func())
    _check_sample_layer_data(samples[0].open(_registry=pm.commands))


def test_make_sample_data_returns_fresh_copies():
    from napari_srn._napari.sample import make_sample_data

    (a, _), (b, _) = make_sample_data()[0], make_sample_data()[0]
    assert a is not b
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- built wheel

_SOURCE_ENTRIES = ("pyproject.toml", "src", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg")

_DISCOVER_FROM_TARGET = """
import json
from importlib import metadata

from npe2 import PluginManager, PluginManifest

import napari_srn

dist = metadata.distribution("napari-srn")
manifest = PluginManifest.from_distribution("napari-srn")
pm = PluginManager()
pm.discover()
pm.activate("napari-srn")
(sample,) = dict(pm.iter_sample_data())["napari-srn"]
(data, meta), = sample.open(_registry=pm.commands)
print(json.dumps({
    "dist": str(dist.locate_file("")),
    "module": napari_srn.__file__,
    "manifest": str(manifest._source_file),
    "discovered": str(pm.get_manifest("napari-srn")._source_file),
    "sample": [list(data.shape), str(data.dtype), meta],
}))
"""


@pytest.mark.slow
def test_built_wheel_carries_manifest_and_weights(tmp_path):
    # build from a copy of the source tree so nothing is written into the checkout
    tree = tmp_path / "tree"
    tree.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for entry in _SOURCE_ENTRIES:
        src = REPO / entry
        if src.is_dir():
            shutil.copytree(src, tree / entry, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, tree / entry)
    out = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, f"wheel build failed:\n{build.stdout}\n{build.stderr}"
    (wheel,) = out.glob("napari_srn-*.whl")

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "napari_srn/napari.yaml" in names
        assert "napari_srn/_napari/sample.py" in names
        assert "napari_srn/model/weights/registry.json" in names
        assert any(
            n.startswith("napari_srn/model/weights/") and n.endswith(".safetensors") for n in names
        ), sorted(names)
        (ep_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(ep_file).decode()
    assert "[napari.manifest]" in entry_points
    assert "napari-srn = napari_srn:napari.yaml" in entry_points

    target = tmp_path / "site"
    pip_args = ["install", "-q", "--no-deps", "--no-index", "--no-compile", "--target"]
    pip = subprocess.run(
        [sys.executable, "-m", "pip", *pip_args, str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, f"pip install failed:\n{pip.stdout}\n{pip.stderr}"

    # PYTHONPATH goes before site-packages (this venv's, which still provides npe2 and the
    # dependencies), so the copy in `target` must win over the editable install
    env = {**os.environ, "PYTHONPATH": str(target)}
    found = json.loads(_run_python(_DISCOVER_FROM_TARGET, env=env).splitlines()[-1])
    target = target.resolve()
    for key in ("dist", "module", "manifest", "discovered"):
        assert Path(found[key]).resolve().is_relative_to(target), (key, found)
    assert found["manifest"] == str(target / "napari_srn" / "napari.yaml")
    assert found["sample"] == [[512, 512, 3], "uint8", {"name": SAMPLE_NAME, "rgb": True}]
