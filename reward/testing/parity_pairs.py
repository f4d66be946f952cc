"""KodCode-style (solution, pytest test file) pairs covering the pytest features the harness must
match real pytest on: plain asserts, parametrize, raises, approx, fixtures (own, tmp_path, capsys,
monkeypatch), classes with setup, skip marks, and features that take the real-pytest fallback.
Used by the verdict-parity test and the benchmark.
"""

# ruff: noqa: E501  (tables of program text: a line per program line reads better than wrapped strings)

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pair:
    name: str
    code: str  # the solution (a completion: fenced or bare)
    test: str  # the pytest file


@dataclass(frozen=True)
class Template:
    name: str
    test: str
    good: str
    bad: tuple[str, ...]  # wrong, crashing or broken solutions


TEMPLATES: tuple[Template, ...] = (
    Template(
        "plain_asserts",
        "from solution import add\n\ndef test_small():\n    assert add(1, 2) == 3\n\n"
        "def test_negative():\n    assert add(-5, 2) == -3\n",
        "def add(a, b):\n    return a + b\n",
        ("def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b if a > 0 else 0\n"),
    ),
    Template(
        "parametrize",
        "import pytest\nfrom solution import is_prime\n\n"
        "@pytest.mark.parametrize('n, expected', [(2, True), (3, True), (4, False), (9, False), (13, True), (1, False)])\n"
        "def test_is_prime(n, expected):\n    assert is_prime(n) == expected\n",
        "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n"
        "            return False\n        i += 1\n    return True\n",
        (
            "def is_prime(n):\n    return n % 2 == 1\n",
            "def is_prime(n):\n    return all(n % i for i in range(2, n))\n",
        ),
    ),
    Template(
        "stacked_parametrize",
        "import pytest\nfrom solution import clamp\n\n@pytest.mark.parametrize('lo', [0, 5])\n"
        "@pytest.mark.parametrize('x', [-3, 4, 12])\ndef test_clamp(x, lo):\n    hi = 10\n"
        "    assert lo <= clamp(x, lo, hi) <= hi\n    assert clamp(x, lo, hi) == max(lo, min(x, hi))\n",
        "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
        ("def clamp(x, lo, hi):\n    return min(x, hi)\n",),
    ),
    Template(
        "raises",
        "import pytest\nfrom solution import safe_div\n\ndef test_div():\n    assert safe_div(7, 2) == 3.5\n\n"
        "def test_zero():\n    with pytest.raises(ZeroDivisionError):\n        safe_div(1, 0)\n\n"
        "def test_type():\n    with pytest.raises(TypeError, match='numbers'):\n        safe_div('a', 1)\n",
        "def safe_div(a, b):\n    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):\n"
        "        raise TypeError('numbers only')\n    return a / b\n",
        (
            "def safe_div(a, b):\n    return a / b if b else 0\n",
            "def safe_div(a, b):\n    if isinstance(a, str):\n        raise TypeError('strings')\n    return a / b\n",
        ),
    ),
    Template(
        "approx",
        "import pytest\nfrom solution import mean\n\ndef test_mean():\n    assert mean([0.1, 0.2, 0.3]) == pytest.approx(0.2)\n\n"
        "def test_empty():\n    with pytest.raises(ValueError):\n        mean([])\n",
        "def mean(xs):\n    if not xs:\n        raise ValueError('empty')\n    return sum(xs) / len(xs)\n",
        (
            "def mean(xs):\n    return sum(xs) / len(xs)\n",
            "def mean(xs):\n    return sum(xs) / (len(xs) + 1)\n",
        ),
    ),
    Template(
        "own_fixtures",
        "import pytest\nfrom solution import Inventory\n\n@pytest.fixture\ndef inv():\n    i = Inventory()\n"
        "    i.add('apple', 3)\n    yield i\n    i.clear()\n\n@pytest.fixture(scope='module')\ndef names():\n"
        "    return ['apple', 'pear']\n\ndef test_count(inv):\n    assert inv.count('apple') == 3\n\n"
        "def test_add_more(inv, names):\n    inv.add(names[1], 2)\n    assert inv.count('pear') == 2\n"
        "    assert inv.total() == 5\n",
        "class Inventory:\n    def __init__(self):\n        self.items = {}\n    def add(self, name, n):\n"
        "        self.items[name] = self.items.get(name, 0) + n\n    def count(self, name):\n"
        "        return self.items.get(name, 0)\n    def total(self):\n        return sum(self.items.values())\n"
        "    def clear(self):\n        self.items.clear()\n",
        (
            "class Inventory:\n    def __init__(self):\n        self.items = {}\n    def add(self, name, n):\n"
            "        self.items[name] = n\n    def count(self, name):\n        return self.items[name]\n"
            "    def total(self):\n        return len(self.items)\n    def clear(self):\n        pass\n",
        ),
    ),
    Template(
        "tmp_path",
        "from solution import count_lines\n\ndef test_file(tmp_path):\n    p = tmp_path / 'a.txt'\n"
        "    p.write_text('x\\ny\\nz\\n')\n    assert count_lines(str(p)) == 3\n\n"
        "def test_empty(tmp_path):\n    p = tmp_path / 'e.txt'\n    p.write_text('')\n    assert count_lines(str(p)) == 0\n",
        "def count_lines(path):\n    with open(path) as f:\n        return sum(1 for _ in f)\n",
        ("def count_lines(path):\n    return len(open(path).read().split('\\n'))\n",),
    ),
    Template(
        "capsys",
        "from solution import greet\n\ndef test_greet(capsys):\n    greet('Ada')\n    out, err = capsys.readouterr()\n"
        "    assert out == 'Hello, Ada!\\n'\n    assert err == ''\n",
        "def greet(name):\n    print(f'Hello, {name}!')\n",
        (
            "def greet(name):\n    print('Hello', name)\n",
            "import sys\ndef greet(name):\n    sys.stderr.write('Hello')\n",
        ),
    ),
    Template(
        "monkeypatch",
        "from solution import read_number, home_dir\n\ndef test_input(monkeypatch):\n"
        "    monkeypatch.setattr('builtins.input', lambda *a: '42')\n    assert read_number() == 42\n\n"
        "def test_env(monkeypatch):\n    monkeypatch.setenv('HOME', '/nowhere')\n    assert home_dir() == '/nowhere'\n",
        "import os\ndef read_number():\n    return int(input())\ndef home_dir():\n    return os.environ['HOME']\n",
        (
            "import os\ndef read_number():\n    return input()\ndef home_dir():\n    return os.path.expanduser('~x')\n",
        ),
    ),
    Template(
        "class_with_setup",
        "from solution import Stack\n\nclass TestStack:\n    def setup_method(self, method):\n        self.s = Stack()\n\n"
        "    def test_push_pop(self):\n        self.s.push(1)\n        self.s.push(2)\n        assert self.s.pop() == 2\n\n"
        "    def test_empty(self):\n        assert self.s.is_empty()\n\n    def test_pop_empty(self):\n"
        "        import pytest\n        with pytest.raises(IndexError):\n            self.s.pop()\n",
        "class Stack:\n    def __init__(self):\n        self._xs = []\n    def push(self, x):\n        self._xs.append(x)\n"
        "    def pop(self):\n        return self._xs.pop()\n    def is_empty(self):\n        return not self._xs\n",
        (
            "class Stack:\n    def __init__(self):\n        self._xs = []\n    def push(self, x):\n        self._xs.insert(0, x)\n"
            "    def pop(self):\n        return self._xs.pop() if self._xs else None\n    def is_empty(self):\n"
            "        return len(self._xs) == 0\n",
        ),
    ),
    Template(
        "class_parametrize_autouse",
        "import pytest\nfrom solution import normalize\n\n@pytest.fixture(autouse=True)\ndef clean():\n    yield\n\n"
        "@pytest.mark.parametrize('raw, want', [(' Ab ', 'ab'), ('X', 'x'), ('', '')])\nclass TestNormalize:\n"
        "    def test_value(self, raw, want):\n        assert normalize(raw) == want\n\n"
        "    def test_type(self, raw, want):\n        assert isinstance(normalize(raw), str)\n",
        "def normalize(s):\n    return s.strip().lower()\n",
        ("def normalize(s):\n    return s.lower()\n",),
    ),
    Template(
        "skip_marks",
        "import sys\nimport pytest\nfrom solution import square\n\n@pytest.mark.skip(reason='later')\ndef test_later():\n"
        "    assert square(2) == 5\n\n@pytest.mark.skipif(sys.version_info < (3, 0), reason='py2')\ndef test_sq():\n"
        "    assert square(3) == 9\n",
        "def square(x):\n    return x * x\n",
        ("def square(x):\n    return x + x\n",),
    ),
    Template(
        "xunit_module",
        "from solution import Counter\n\nstate = {}\n\ndef setup_module(module):\n    state['c'] = Counter()\n\n"
        "def setup_function(function):\n    state['c'].reset()\n\ndef test_inc():\n    state['c'].inc()\n"
        "    assert state['c'].value == 1\n\ndef test_twice():\n    state['c'].inc()\n    state['c'].inc()\n"
        "    assert state['c'].value == 2\n",
        "class Counter:\n    def __init__(self):\n        self.value = 0\n    def inc(self):\n        self.value += 1\n"
        "    def reset(self):\n        self.value = 0\n",
        (
            "class Counter:\n    def __init__(self):\n        self.value = 0\n    def inc(self):\n        self.value += 1\n"
            "    def reset(self):\n        pass\n",
        ),
    ),
    Template(
        "crash_in_solution",
        "from solution import first\n\ndef test_first():\n    assert first([3, 4]) == 3\n\ndef test_first_empty():\n"
        "    assert first([]) is None\n",
        "def first(xs):\n    return xs[0] if xs else None\n",
        (
            "def first(xs):\n    return xs[0]\n",
            "def first(xs):\n    return xs[0] if xs else None\nraise RuntimeError('boom')\n",
        ),
    ),
    Template(
        "import_errors",
        "from solution import reverse_words\n\ndef test_rev():\n    assert reverse_words('a b c') == 'c b a'\n",
        "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n",
        ("def reverse_word(s):\n    return s[::-1]\n", "def reverse_words(s)\n    return s\n"),
    ),
    Template(
        "traceback_in_solution",
        "from solution import parse_int\n\ndef test_ok():\n    assert parse_int('12') == 12\n\n"
        "def test_bad():\n    assert parse_int('x') is None\n",
        "import logging, traceback\ndef parse_int(s):\n    try:\n        return int(s)\n    except ValueError:\n"
        "        traceback.print_exc()\n        logging.exception('bad input %r', s)\n"
        "        assert 'ValueError' in traceback.format_exc()\n        return None\n",
        (
            "import traceback\ndef parse_int(s):\n    try:\n        return int(s)\n    except ValueError:\n"
            "        traceback.print_exc()\n        return 0\n",
        ),
    ),
    Template(
        "stdlib_records",
        "from solution import Employee, Level, make_team, promote\n\n"
        "def test_namedtuple():\n    e = Employee('ann', 3)\n    assert e.name == 'ann' and e._replace(level=4).level == 4\n"
        "    assert Employee('bob').level == 1\n\n"
        "def test_team():\n    team = make_team(['ann', 'bob'])\n    assert [m.name for m in team.members] == ['ann', 'bob']\n"
        "    assert team.size() == 2\n\n"
        "def test_promote():\n    assert promote(Employee('ann', 1)).level == 2\n    assert Level(2) is Level.SENIOR\n",
        "from collections import namedtuple\nfrom dataclasses import dataclass, field\nfrom enum import Enum\n"
        "from typing import List, NamedTuple\n\n"
        "Employee = namedtuple('Employee', ['name', 'level'], defaults=[1])\nEmployee.__doc__ = 'A member of staff.'\n\n"
        "class Level(Enum):\n    JUNIOR = 1\n    SENIOR = 2\n\n"
        "class Span(NamedTuple):\n    start: int\n    end: int = 0\n\n"
        "@dataclass\nclass Team:\n    members: List[Employee] = field(default_factory=list)\n\n"
        "    def size(self) -> int:\n        return len(self.members)\n\n"
        "def make_team(names: List[str]) -> Team:\n    return Team([Employee(n) for n in names])\n\n"
        "def promote(e: Employee) -> Employee:\n    return e._replace(level=e.level + 1)\n",
        (
            "from collections import namedtuple\nfrom dataclasses import dataclass, field\nfrom enum import Enum\n\n"
            "Employee = namedtuple('Employee', ['name', 'level'], defaults=[1])\n\n"
            "class Level(Enum):\n    JUNIOR = 1\n    SENIOR = 2\n\n"
            "@dataclass\nclass Team:\n    members: list = field(default_factory=list)\n\n"
            "    def size(self):\n        return len(self.members) + 1\n\n"
            "def make_team(names):\n    return Team([Employee(n) for n in names])\n\n"
            "def promote(e):\n    return e\n",
        ),
    ),
    Template(
        "xfail_fallback",
        "import pytest\nfrom solution import fib\n\ndef test_fib():\n    assert [fib(i) for i in range(7)] == [0, 1, 1, 2, 3, 5, 8]\n\n"
        "@pytest.mark.xfail(reason='negative input is undefined')\ndef test_negative():\n    assert fib(-1) == 0\n",
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        ("def fib(n):\n    return n\n",),
    ),
    Template(
        "request_fixture_fallback",
        "import pytest\nfrom solution import double\n\n@pytest.fixture(params=[1, 2, 3])\ndef value(request):\n"
        "    return request.param\n\ndef test_double(value):\n    assert double(value) == value * 2\n",
        "def double(x):\n    return 2 * x\n",
        ("def double(x):\n    return x + 2\n",),
    ),
    Template(
        "unittest_fallback",
        "import unittest\nfrom solution import is_even\n\nclass TestEven(unittest.TestCase):\n    def test_even(self):\n"
        "        self.assertTrue(is_even(4))\n\n    def test_odd(self):\n        self.assertFalse(is_even(7))\n",
        "def is_even(n):\n    return n % 2 == 0\n",
        ("def is_even(n):\n    return True\n",),
    ),
    Template(
        "fenced_completion",
        "from solution import longest\n\ndef test_longest():\n    assert longest(['a', 'abc', 'ab']) == 'abc'\n\n"
        "def test_tie():\n    assert longest(['xy', 'zw']) == 'xy'\n",
        "Here is my solution:\n\n```python\ndef longest(words):\n    best = ''\n    for w in words:\n"
        "        if len(w) > len(best):\n            best = w\n    return best\n```\n\nIt keeps the first of ties.",
        ("```python\ndef longest(words):\n    return max(words, key=len)[::-1]\n```\n",),
    ),
)


def pairs() -> list[Pair]:
    """Every template's good solution and its bad ones."""
    out = []
    for t in TEMPLATES:
        out.append(Pair(f"{t.name}:good", t.good, t.test))
        out.extend(Pair(f"{t.name}:bad{i}", bad, t.test) for i, bad in enumerate(t.bad))
    return out


FALLBACK_TEMPLATES = frozenset({"xfail_fallback", "request_fixture_fallback", "unittest_fallback"})


def bench_pairs(n: int, fallback_every: int = 50) -> list[Pair]:
    """`n` pairs cycling through `pairs()`, each code text made unique (no cache hits) by a comment.

    Test files that need real pytest (xfail, parametrized fixtures, unittest classes) are rare in
    KodCode-style data; one pair in `fallback_every` is drawn from them, the rest from the others."""
    everyday = [p for p in pairs() if p.name.split(":")[0] not in FALLBACK_TEMPLATES]
    rare = [p for p in pairs() if p.name.split(":")[0] in FALLBACK_TEMPLATES]
    out = []
    for i in range(n):
        p = (
            rare[(i // fallback_every) % len(rare)]
            if i % fallback_every == fallback_every - 1
            else everyday[i % len(everyday)]
        )
        if "```" in p.code:
            code = p.code.replace("```python\n", f"```python\n# variant {i}\n")
        else:
            code = f"# variant {i}\n{p.code}"
        out.append(Pair(f"{p.name}#{i}", code, p.test))
    return out
