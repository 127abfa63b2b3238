"""cli/codegen_cache.py: attrs' and cattrs' generated code loaded from a cache, as the text would compile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccproxy_core.cli import codegen_cache
from ccproxy_core.cli.codegen_cache import SEED, Cache

ROOT = Path(__file__).parents[3]

HASH_SCRIPT = "def __hash__(self):\n    return hash((\n        {number},\n        self.a,\n    ))\n"


class _Obj:
    a = 7


def _hash_function(cache: Cache, number: int) -> object:
    namespace: dict[str, object] = {}
    exec(cache.compile(HASH_SCRIPT.format(number=number), "<attrs generated methods t.P>", "exec"), namespace)
    return namespace["__hash__"]


def test_a_text_seen_before_is_loaded_and_gets_this_runs_hash_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second run finds the code compiled by the first, with its own per-process number put back."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    first = Cache(tmp_path / "c.bin")
    assert _hash_function(first, 12345)(_Obj()) == hash((12345, 7))  # type: ignore[operator]
    assert first.misses == 1
    first.save()
    second = Cache(tmp_path / "c.bin")
    assert _hash_function(second, -987)(_Obj()) == hash((-987, 7))  # type: ignore[operator]
    assert second.misses == 0 and len(second.used) == 1
    assert SEED not in _hash_function(second, 5).__code__.co_consts  # type: ignore[attr-defined]


def test_a_bad_file_means_compiling_and_no_bytecode_flag_means_no_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncated or foreign file is ignored; with PYTHONDONTWRITEBYTECODE nothing is written."""
    path = tmp_path / "c.bin"
    for junk in (b"", b"ccproxy-codegen\0", codegen_cache.HEADER + b"\x00\x01", b"something else"):
        path.write_bytes(junk)
        cache = Cache(path)
        assert _hash_function(cache, 1)(_Obj()) == hash((1, 7))  # type: ignore[operator]
        assert cache.misses == 1
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path.unlink()
    cache.save()
    assert not path.exists()


PROBE = """
import builtins, json, sys
from ccproxy_core.cli import codegen_cache
builtin_compile = builtins.compile
cache = codegen_cache.install(__import__("pathlib").Path(sys.argv[1]))
own_classes = len(cache.used)  # attrs' own classes, made as attrs was first imported
from attrs import frozen

@frozen
class P:
    a: int
    b: str = "x"

misses = cache.misses
codegen_cache.uninstall()
p = P(1)
print(json.dumps({
    "misses": misses,
    "own_classes": own_classes,
    "builtin_back": builtins.compile is builtin_compile,
    "hash_ok": hash(p) == hash((hash("<attrs generated hash __main__.P>"), 1, "x")),
    "eq": p == P(1) and p != P(2),
    "repr": repr(p),
}))
"""


@pytest.mark.slow
def test_a_class_from_the_cache_behaves_as_one_compiled_in_a_run_with_another_hash_seed(tmp_path: Path) -> None:
    """Two processes with different hash seeds: the second compiles nothing (not even the classes attrs
    makes of its own as it is imported), and its class hashes, compares and prints exactly as
    compiling would make it; the builtin compile is the builtin again once install returns."""
    path = tmp_path / "cache.bin"
    runs = []
    for seed in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True, env=env, timeout=60
        )
        runs.append(json.loads(out.stdout))
    assert runs[0]["misses"] > 0 and runs[1]["misses"] == 0
    for run in runs:
        assert run["hash_ok"] and run["eq"] and run["repr"] == "P(a=1, b='x')"
        assert run["own_classes"] > 10 and run["builtin_back"]


def test_install_patches_attrs_and_cattrs_and_uninstall_puts_the_builtin_back(tmp_path: Path) -> None:
    """While installed, both libraries compile through the cache; after, through the builtin again."""
    import attr._make
    import cattrs.gen

    cache = codegen_cache.install(tmp_path / "c.bin")
    try:
        assert vars(attr._make)["compile"] == cache.compile and vars(cattrs.gen)["compile"] == cache.compile
        assert codegen_cache.install() is cache
    finally:
        codegen_cache.uninstall()
    assert "compile" not in vars(attr._make) and "compile" not in vars(cattrs.gen)


def test_forget_sources_drops_only_generated_text_and_the_class_still_works() -> None:
    """attrs' and cattrs' generated text leaves linecache, other files' lines stay, and the class runs and fails as before."""
    import linecache
    import traceback

    import attrs
    import cattrs

    @attrs.frozen
    class Probe:
        size: int = attrs.field(validator=attrs.validators.gt(0))

    cattrs.Converter().get_structure_hook(Probe)
    linecache.getlines(__file__)
    generated = [name for name in linecache.cache if name.startswith(codegen_cache.GENERATED)]
    assert any("Probe" in name for name in generated)
    assert codegen_cache.forget_sources() >= len(generated)
    assert not [name for name in linecache.cache if name.startswith(codegen_cache.GENERATED)]
    assert __file__ in linecache.cache
    assert Probe(3) == Probe(3) and hash(Probe(3)) == hash(Probe(3)) and repr(Probe(3)) == "Probe(size=3)"
    with pytest.raises(ValueError, match="'size' must be > 0") as caught:
        Probe(0)
    text = "".join(traceback.format_exception(caught.value))
    assert "<attrs generated methods" in text and "in __init__" in text


def test_code_compiled_through_the_cache_does_not_take_this_modules_future_flags(tmp_path: Path) -> None:
    """A text compiled on a miss keeps its annotations as objects (codegen_cache's own
    `from __future__ import annotations` would make them strings), as attrs' own compile would."""
    namespace: dict[str, object] = {}
    exec(Cache(tmp_path / "c.bin").compile("def f(x: int) -> None: pass\n", "<t>", "exec"), namespace)
    assert namespace["f"].__annotations__ == {"x": int, "return": None}
