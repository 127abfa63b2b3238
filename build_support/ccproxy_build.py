"""ccproxy's build backend: setuptools', plus mypy in the build environment when the build is
asked to compile (CCPROXY_COMPILE=1, see setup.py), so that

    CCPROXY_COMPILE=1 pip install .

fetches mypyc like any build dependency. An editable install (`pip install -e .`) is never
compiled: it runs the sources as they are edited, where a compiled module built from an older
copy of its source would be imported in its place.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (the rest of the backend is setuptools' own)

MYPYC = "mypy>=1.10"


def _compiling() -> bool:
    return os.environ.get("CCPROXY_COMPILE", "0") == "1"


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    if not _compiling():
        return _setuptools.get_requires_for_build_wheel(config_settings)
    # setuptools runs setup.py to list its own needs; mypy is not there yet, so it is asked as
    # for a pure build, and mypy is added.
    os.environ["CCPROXY_COMPILE"] = "0"
    try:
        requires = _setuptools.get_requires_for_build_wheel(config_settings)
    finally:
        os.environ["CCPROXY_COMPILE"] = "1"
    return [*requires, MYPYC]


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    # The metadata is the same either way; asked as for a pure build, so that mypyc does not
    # generate the C code twice (here and again in build_wheel).
    compiling = _compiling()
    os.environ["CCPROXY_COMPILE"] = "0"
    try:
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    finally:
        os.environ["CCPROXY_COMPILE"] = "1" if compiling else "0"


# An editable install: its three hooks run as for a pure build, whatever CCPROXY_COMPILE says.
def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    os.environ["CCPROXY_COMPILE"] = "0"
    return _setuptools.get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    os.environ["CCPROXY_COMPILE"] = "0"
    return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_editable(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    os.environ["CCPROXY_COMPILE"] = "0"
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
