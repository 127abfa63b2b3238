"""The code that attrs and cattrs generate, compiled once and kept, as Python keeps .pyc files.

attrs writes each class's `__init__`, `__eq__`, `__hash__` and `__repr__` as source text and
compiles it when the class is defined; cattrs does the same for each structure and unstructure
function. `ccproxy serve` defines about 120 attrs classes and structures its config with cattrs,
and compiling that text was about 100 ms of CPU in a 0.5 s start (cProfile: `builtins.compile`,
118 calls from attr._make and 37 from cattrs.gen), more than any module ccproxy imports.

`install()` (at the top of `serve`) puts a caching `compile` in the namespaces of the two modules
that call it (both call the builtin by its global name; while they are first imported, when
attrs makes its own classes, the builtin itself): a text seen before is loaded from the
cache with `marshal`, as an import loads a .pyc, instead of compiled. `save()` writes what this
run used to one file in the user cache directory (`<cache dir>/codegen-<python tag>.bin`, mode
0600, replaced atomically); it writes nothing when every text was found, or when Python is told
not to write bytecode (PYTHONDONTWRITEBYTECODE, -B). An entry is found only by the exact text and
file name it was compiled from, so a changed class (a new ccproxy, attrs or cattrs) misses and is
compiled as before, and the file never grows with old versions. Anything wrong with the file
(missing, unreadable, truncated, another Python's) means compiling as before: nothing here can
fail or change a start, only make it cheaper. `uninstall()` puts the builtin back, and
`forget_sources()` drops the text of the generated code that attrs and cattrs keep in linecache.

One part of attrs' text changes from process to process: a class's `__hash__` starts from
`hash(<its generated file name>)`, a number that string hash randomization makes new each run.
The cache keeps that method compiled with a fixed stand-in number (`SEED`) and, on each use, puts
this run's number in its place in the code's constants: the code is the one compiling this run's
text would give. A text with no such number, or with two different ones, is cached as it is.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import linecache
import marshal
import os
import re
import sys
import tempfile
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from ccproxy_core import dirs

# Both call `compile(script, filename, "exec")` by its global name (attrs 26, cattrs 25).
PATCHED = ("attr._make", "cattrs.gen")
HEADER = b"ccproxy-codegen\0" + importlib.util.MAGIC_NUMBER  # another Python's bytecode is never loaded

_builtin_compile = builtins.compile

# attrs' __hash__: `return hash((` then, on a line of its own, the class's per-process number.
_TYPE_HASH = re.compile(r"(hash\(\(\n[ ]+)(-?\d+),\n")
SEED = 0x7CC9_0C0D_E5EE_D5EE  # stands for that number in the cached code


def _seedless(source: str) -> tuple[str, int | None]:
    """The text with attrs' per-process hash number replaced by SEED, and the number (None: as it is)."""
    numbers = {m.group(2) for m in _TYPE_HASH.finditer(source)}
    if len(numbers) != 1 or str(SEED) in source:
        return source, None
    return _TYPE_HASH.sub(lambda m: f"{m.group(1)}{SEED},\n", source), int(numbers.pop())


def _reseeded(code: CodeType, number: int) -> CodeType:
    """`code` with every SEED constant (in it and the functions it defines) replaced by `number`."""
    consts = tuple(
        number if type(c) is int and c == SEED else _reseeded(c, number) if isinstance(c, CodeType) else c
        for c in code.co_consts
    )
    return code.replace(co_consts=consts)


class Cache:
    """Code objects by the digest of the text they were compiled from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.found: dict[bytes, CodeType] = {}
        self.used: dict[bytes, CodeType] = {}
        self.misses = 0
        try:
            data = path.read_bytes()
            if data.startswith(HEADER):
                table = marshal.loads(memoryview(data)[len(HEADER) :])
                if isinstance(table, dict):
                    self.found = table
        except (OSError, ValueError, EOFError, TypeError):
            pass  # no cache yet, or one that cannot be read: compile as before

    def compile(self, source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or not isinstance(source, str) or not isinstance(filename, str):
            return _builtin_compile(source, filename, mode, *args, **kwargs)
        text, number = _seedless(source)
        key = hashlib.blake2b(f"{mode}\0{filename}\0{text}".encode(), digest_size=20).digest()
        code = self.found.get(key)
        if not isinstance(code, CodeType):
            # dont_inherit: compiled as its caller (attrs, cattrs) would, not with this module's __future__ flags
            code = _builtin_compile(text, filename, mode, dont_inherit=True)
            self.misses += 1
        self.used[key] = code
        return code if number is None else _reseeded(code, number)

    def save(self) -> None:
        """Write what this run used, if it compiled anything; a file that cannot be written is skipped."""
        if not self.misses or sys.dont_write_bytecode:
            return
        self.misses = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".codegen-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(HEADER + marshal.dumps(self.used))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass


_installed: Cache | None = None


def default_path() -> Path:
    return dirs.cache_dir() / f"codegen-{sys.implementation.cache_tag}.bin"


def _modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in PATCHED]


def install(path: Path | None = None) -> Cache:
    """Compile attrs' and cattrs' generated code through the cache from now on (idempotent).

    Only a module that calls the builtin `compile` (has no name `compile` of its own) is patched."""
    global _installed
    if _installed is None:
        _installed = Cache(path or default_path())
        # attrs makes ~60 classes of its own (validators, converters) as it is first imported,
        # before its module can be patched: while attrs and cattrs load, the builtin itself is
        # the cache's (a call it does not cache, with flags or bytes, goes to the builtin).
        builtins.compile = _installed.compile
        try:
            modules = _modules()
        finally:
            builtins.compile = _builtin_compile
        for module in modules:
            if "compile" not in vars(module):
                module.compile = _installed.compile  # type: ignore[attr-defined]
    return _installed


def save() -> None:
    if _installed is not None:
        _installed.save()


# The names attrs and cattrs give their generated code in linecache.
GENERATED = ("<attrs generated ", "<cattrs generated ")


def forget_sources() -> int:
    """Drop the text of attrs' and cattrs' generated code from linecache; how many were dropped.

    attrs keeps the text of every class's methods there, and cattrs of each function it writes,
    for a debugger to step through and a traceback to quote (cattrs has a switch to keep none,
    `_cattrs_use_linecache`). For a server that is about 0.3 MB held for its whole life (~136
    texts, 0.2 MB of lines): `serve` drops them once its classes are made. The code runs the same;
    a traceback through a generated `__init__` names its file and line without quoting it, and
    a class a module defines later (a lazily loaded surface) keeps its text."""
    names = [name for name in linecache.cache if name.startswith(GENERATED)]
    for name in names:
        del linecache.cache[name]
    return len(names)


def uninstall() -> None:
    """Save, and let attrs and cattrs compile with the builtin again."""
    global _installed
    save()
    for module in _modules():
        if _installed is not None and vars(module).get("compile") == _installed.compile:
            del module.compile
    _installed = None
