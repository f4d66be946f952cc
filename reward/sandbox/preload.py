"""What the fork server imports before any sandboxed child runs. A child runs as an unprivileged uid
in a mount namespace that hides the interpreter's directories, so a module not imported here cannot
be imported by a solution or its tests at all: keep the list broad.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile

# The standard library that solutions and KodCode-style tests use, plus what they pull in lazily.
STDLIB = [
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "binascii",
    "builtins",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "collections.abc",
    "colorsys",
    "concurrent.futures",
    "concurrent.futures.thread",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "errno",
    "fnmatch",
    "fractions",
    "functools",
    "gc",
    "getpass",
    "glob",
    "graphlib",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "html.parser",
    "http",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "linecache",
    "locale",
    "logging",
    "lzma",
    "math",
    "mmap",
    "numbers",
    "operator",
    "os",
    "os.path",
    "pathlib",
    "pickle",
    "pprint",
    "queue",
    "random",
    "re",
    "reprlib",
    "secrets",
    "select",
    "shlex",
    "shutil",
    "signal",
    "socket",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sys",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "token",
    "tokenize",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "unittest.mock",
    "urllib",
    "urllib.parse",
    "uuid",
    "warnings",
    "weakref",
    "xml.etree.ElementTree",
    "zipfile",
    "zlib",
    "zoneinfo",
    "_strptime",
    "sqlite3",
    "encodings.idna",
    "encodings.utf_16",
    "encodings.utf_32",
    "encodings.latin_1",
    "encodings.ascii",
    "encodings.cp1252",
    "encodings.unicode_escape",
    "encodings.raw_unicode_escape",
    "encodings.utf_8_sig",
    "encodings.hex_codec",
    "encodings.base64_codec",
    "encodings.punycode",
    "encodings.utf_16_le",
    "encodings.utf_16_be",
]
# Third-party packages imported if installed. Heavier ones (numpy: +13 MB, +1.5 ms per fork) are
# opt-in through `extra`.
OPTIONAL = ("typing_extensions",)


def preload(extra: tuple[str, ...] = ()) -> list[str]:
    """Import everything; returns the optional and extra packages that were loaded."""
    for name in STDLIB:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    loaded = []
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # a forked child cannot use a thread pool
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for name in (*OPTIONAL, *extra):
        try:
            importlib.import_module(name)
            loaded.append(name)
        except ImportError:
            continue
    _touch_lazy_state()
    warm_pytest()
    return loaded


def _touch_lazy_state() -> None:
    """Run the code paths that import or cache on first use."""
    import datetime
    import locale
    import time

    time.strptime("2024-01-02", "%Y-%m-%d")
    datetime.datetime.strptime("2024-01-02", "%Y-%m-%d")
    locale.getpreferredencoding(False)
    "x".encode("idna")
    "x".encode("utf-16")
    tempfile.gettempdir()


def warm_pytest() -> None:
    """Run real pytest once on a small test file so every module its in-process run needs is imported
    (the fallback path runs pytest.main inside the sandbox, where nothing new can be imported)."""
    import pytest

    from reward.harness.fast_path import collect  # noqa: F401
    from reward.harness.fixtures import Unsupported  # noqa: F401  (harness modules, imported for the child)
    from reward.harness.runners import run_real_pytest  # noqa: F401

    source = (
        "import pytest\n"
        "@pytest.fixture\ndef two():\n    return 2\n"
        "@pytest.mark.parametrize('x', [1, 2])\ndef test_a(x, two, tmp_path, capsys, monkeypatch):\n"
        "    print(x); assert capsys.readouterr().out\n    assert x <= two\n"
        "@pytest.mark.xfail\ndef test_b():\n    assert 0\n"
        "@pytest.mark.skip\ndef test_c():\n    pass\n"
        "class TestK:\n    def test_k(self):\n        with pytest.raises(ValueError):\n            int('x')\n"
        "def test_fail():\n    assert [1, 2] == [1, 3]\n"
        "def test_error():\n    raise KeyError('k')\n"
    )
    saved_out, saved_err, saved_cwd = sys.stdout, sys.stderr, os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "test_warm.py")
        with open(path, "w") as f:
            f.write(source)
        with open(os.path.join(tmp, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        devnull = open(os.devnull, "w")  # noqa: SIM115
        try:
            sys.stdout = sys.stderr = devnull
            pytest.main([path, "-q", "-p", "no:cacheprovider", "--noconftest"], plugins=[])
        finally:
            sys.stdout, sys.stderr = saved_out, saved_err
            devnull.close()
            os.chdir(saved_cwd)
    sys.modules.pop("test_warm", None)
