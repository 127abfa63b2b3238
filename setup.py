"""ccproxy's build. Everything is declared in pyproject.toml; this file only adds, when the build
is asked for it, the compiled modules:

    CCPROXY_COMPILE=1 pip install .          # needs a C compiler; mypy is fetched for the build

builds each module listed under [tool.ccproxy] `compiled` in pyproject.toml to a C extension with
mypyc. The wheel keeps every .py beside its extension: Python imports the extension on the
interpreter and platform it was built for, and the source anywhere else. CCPROXY_COMPILE=0 (the
default) builds pure Python, which behaves the same, only slower.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup

HERE = Path(__file__).resolve().parent


def compiled_modules(build_base: str) -> list[Any]:
    flag = os.environ.get("CCPROXY_COMPILE", "0")
    if flag == "0":
        return []
    if flag != "1":
        raise SystemExit(f"CCPROXY_COMPILE={flag!r}: expected 0 (pure Python, the default) or 1 (compile with mypyc)")
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "CCPROXY_COMPILE=1 needs mypy (its mypyc) where the build runs: `pip install .` fetches it; "
            "with --no-build-isolation, `pip install mypy` first"
        ) from None
    paths = tomllib.loads((HERE / "pyproject.toml").read_text())["tool"]["ccproxy"]["compiled"]
    return list(mypycify(paths, opt_level="3", target_dir=os.path.join(build_base, "mypyc")))


# Every build in a directory of its own: setuptools' default, build/ in the checkout, is reused by
# the next build, which would then ship the extensions of an earlier compiled one.
with tempfile.TemporaryDirectory(prefix="ccproxy-build-") as build_base:
    setup(ext_modules=compiled_modules(build_base), options={"build": {"build_base": build_base}})
