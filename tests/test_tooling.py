"""The project's own checks, run with the test suite: numpydoc on the public API, ruff, mypy,
and the length of the library's functions.

The ``[test]`` extra installs every tool; a test skips (saying which tool is missing) only where
one is not installed. The settings live in ``pyproject.toml`` (``[tool.numpydoc_validation]``,
``[tool.ruff]``, ``[tool.mypy]``), so that these tests, pre-commit and a developer running a
tool by hand check the same things.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What ruff checks and formats (everything that is Python in the repository).
LINTED = ["src", "tests", "benchmarks", "scripts"]
#: The issue's rule: a function reads at once, or is split into named steps. Counted without its
#: docstring (a public function's parameters can take more lines than its code).
MAX_FUNCTION_LINES = 80


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


def _run_tool(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in the repository root, with this interpreter's packages."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _public_objects() -> list[str]:
    """Import paths of everything in ``napari_srn.__all__`` that has a docstring to check
    (functions and classes, not constants), plus the public methods and properties that each
    class defines itself."""
    import napari_srn

    names = []
    for name in napari_srn.__all__:
        obj = getattr(napari_srn, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # __version__, VARIANTS
        path = f"{obj.__module__}.{obj.__qualname__}"
        names.append(path)
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                member = isinstance(value, (classmethod, staticmethod, property))
                if not attr.startswith("_") and (inspect.isfunction(value) or member):
                    names.append(f"{path}.{attr}")
    return names


def test_public_api_docstrings_pass_numpydoc_validation():
    _needs("numpydoc")
    from numpydoc.validate import get_validation_checks, validate

    config = _pyproject()["tool"]["numpydoc_validation"]
    checks = get_validation_checks(set(config["checks"]))
    exclude = [re.compile(pattern) for pattern in config.get("exclude", [])]
    names = [n for n in _public_objects() if not any(p.search(n) for p in exclude)]
    assert len(names) > 20  # the API's functions, classes and methods were found
    problems = [
        f"{name}: {code} {message}"
        for name in names
        for code, message in validate(name)["errors"]
        if code in checks
    ]
    assert not problems, "numpydoc validation ([tool.numpydoc_validation]):\n" + "\n".join(problems)


def test_ruff_check():
    _needs("ruff")
    run = _run_tool("ruff", "check", *LINTED, timeout=120)
    if run.returncode:
        pytest.fail(f"ruff check {' '.join(LINTED)}:\n{run.stdout}{run.stderr}", pytrace=False)


def test_ruff_format_check():
    _needs("ruff")
    run = _run_tool("ruff", "format", "--check", *LINTED, timeout=120)
    if run.returncode:
        pytest.fail(
            f"ruff format --check (`ruff format {' '.join(LINTED)}` fixes it):\n"
            f"{run.stdout}{run.stderr}",
            pytrace=False,
        )


def test_mypy():
    """mypy on the library with the settings in ``[tool.mypy]`` (a minute or so when cold)."""
    _needs("mypy")
    run = _run_tool("mypy", timeout=600)
    if run.returncode:
        pytest.fail(f"mypy ([tool.mypy]):\n{run.stdout}{run.stderr}", pytrace=False)


def test_library_functions_are_short():
    long = []
    for path in sorted((ROOT / "src" / "napari_srn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if ast.get_docstring(node, clean=False) is not None:
                doc = node.body[0]
                assert doc.end_lineno is not None
                lines -= doc.end_lineno - doc.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                where = path.relative_to(ROOT)
                long.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    assert not long, (
        f"functions longer than {MAX_FUNCTION_LINES} lines (docstring excluded); split them "
        "into named steps:\n" + "\n".join(long)
    )
