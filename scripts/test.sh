#!/usr/bin/env bash
# The test command: `bash scripts/test.sh [pytest args]`, e.g. `bash scripts/test.sh -q -m "not slow"`.
#
# Works on a fresh Debian/Ubuntu machine that has python3 (>= 3.10) and pip:
#   - as root, installs Xvfb and the X/GL libraries Qt needs for the napari widget tests (apt-get);
#   - creates .venv (if missing) and installs torch (pinned, first), then this package with the
#     [test,napari] extras in editable mode;
#   - runs pytest under a virtual display (xvfb-run) when one is available.
# pytest's exit status is the script's. Environment: PYTHON (default python3) creates .venv;
# NAPARI_SRN_TORCH (default torch==2.13.0) is the torch requirement installed first, from
# NAPARI_SRN_TORCH_INDEX when set (e.g. https://download.pytorch.org/whl/cpu: PyPI's Linux torch
# wheels are CUDA builds of several GB).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${NAPARI_SRN_TORCH:-torch==2.13.0}"
TORCH_INDEX="${NAPARI_SRN_TORCH_INDEX:-}"

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; }

apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -q
        apt_updated=1
    fi
    apt-get install -y -q --no-install-recommends "$@"
}

# pip prints one "Location ... is ignored" warning per package when an index configured on this
# machine is absent; drop those lines and keep everything else (errors included).
pip_install() {
    local rc=0
    .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 \
        | grep -v "^WARNING: Location '.*' is ignored" || rc=${PIPESTATUS[0]}
    return "$rc"
}

if ! command -v xvfb-run >/dev/null 2>&1 && can_apt; then
    echo "scripts/test.sh: installing Xvfb and Qt's system libraries (apt-get)" >&2
    apt_install xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
        libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
        libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3
fi

if [ ! -x .venv/bin/python ]; then
    # Debian's own python3 ships venv's ensurepip separately, in python3-venv
    if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 && can_apt; then
        apt_install python3-venv
    fi
    echo "scripts/test.sh: creating .venv with $("$PYTHON" --version)" >&2
    "$PYTHON" -m venv .venv
fi

# torch first, pinned: the package accepts torch>=2.2,<2.15, and resolving that on Linux would
# otherwise fetch a multi-GB CUDA build
pip_install "$TORCH_SPEC" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
pip_install -e ".[test,napari]"

if command -v xvfb-run >/dev/null 2>&1; then
    exec xvfb-run -a .venv/bin/python -m pytest "$@"
fi
echo "scripts/test.sh: xvfb-run not found, running pytest without a virtual display" >&2
exec .venv/bin/python -m pytest "$@"
