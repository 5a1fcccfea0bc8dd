"""Golden traces: exact expected text for each construct (reviewed against 3.11 settrace).

Every expectation below was checked by hand against the rules of the CWM notes (1.4-1.8):
locals before the line, `..` reset after every call and return, generator yields as
returns, comprehension frames with `.0`, settrace's exception/return sequence.
"""

from __future__ import annotations

import pytest

from tokenroll.traces.format import frames_to_text
from tokenroll.traces.frames import Outcome

GOLDEN = {
    'sorted_lambda': (
        'def f(words):\n    return sorted(words, key=lambda w: len(w))',
        "f(['ccc', 'a', 'bb'])",
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            "<|line_sep|>{}<|action_sep|>    return f(['ccc', 'a', 'bb'])\n<|frame_sep|>"
            '<|call_sep|>{"words": "[\'ccc\', \'a\', \'bb\']"}<|action_sep|>def f(words):\n<|frame_sep|>'
            '<|line_sep|>{"words": ".."}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|call_sep|>{"w": "\'ccc\'"}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|line_sep|>{"w": ".."}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|arg_sep|>"3"<|frame_sep|>'
            '<|call_sep|>{"w": "\'a\'"}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|line_sep|>{"w": ".."}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|arg_sep|>"1"<|frame_sep|>'
            '<|call_sep|>{"w": "\'bb\'"}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|line_sep|>{"w": ".."}<|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|arg_sep|>"2"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sorted(words, key=lambda w: len(w))\n<|arg_sep|>"[\'a\', \'bb\', \'ccc\']"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f([\'ccc\', \'a\', \'bb\'])\n<|arg_sep|>"[\'a\', \'bb\', \'ccc\']"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'listcomp': (
        'def f(n):\n    squares = [i * i for i in range(n)]\n    return squares',
        'f(2)',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(2)\n<|frame_sep|>'
            '<|call_sep|>{"n": "2"}<|action_sep|>def f(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>    squares = [i * i for i in range(n)]\n<|frame_sep|>'
            '<|call_sep|>{".0": "<range_iterator object>"}<|action_sep|>    squares = [i * i for i in range(n)]\n<|frame_sep|>'
            '<|line_sep|>{".0": ".."}<|action_sep|>    squares = [i * i for i in range(n)]\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "i": "0"}<|action_sep|>    squares = [i * i for i in range(n)]\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "i": "1"}<|action_sep|>    squares = [i * i for i in range(n)]\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    squares = [i * i for i in range(n)]\n<|arg_sep|>"[0, 1]"<|frame_sep|>'
            '<|line_sep|>{"n": "2", "squares": "[0, 1]"}<|action_sep|>    return squares\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return squares\n<|arg_sep|>"[0, 1]"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(2)\n<|arg_sep|>"[0, 1]"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'setcomp': (
        'def f(s):\n    return {c.upper() for c in s}',
        "f('ab')",
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            "<|line_sep|>{}<|action_sep|>    return f('ab')\n<|frame_sep|>"
            '<|call_sep|>{"s": "\'ab\'"}<|action_sep|>def f(s):\n<|frame_sep|>'
            '<|line_sep|>{"s": ".."}<|action_sep|>    return {c.upper() for c in s}\n<|frame_sep|>'
            '<|call_sep|>{".0": "<str_ascii_iterator object>"}<|action_sep|>    return {c.upper() for c in s}\n<|frame_sep|>'
            '<|line_sep|>{".0": ".."}<|action_sep|>    return {c.upper() for c in s}\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "c": "\'a\'"}<|action_sep|>    return {c.upper() for c in s}\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "c": "\'b\'"}<|action_sep|>    return {c.upper() for c in s}\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return {c.upper() for c in s}\n<|arg_sep|>"{\'B\', \'A\'}"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return {c.upper() for c in s}\n<|arg_sep|>"{\'B\', \'A\'}"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(\'ab\')\n<|arg_sep|>"{\'B\', \'A\'}"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'dictcomp': (
        'def f(xs):\n    return {x: len(x) for x in xs}',
        "f(['a', 'bb'])",
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            "<|line_sep|>{}<|action_sep|>    return f(['a', 'bb'])\n<|frame_sep|>"
            '<|call_sep|>{"xs": "[\'a\', \'bb\']"}<|action_sep|>def f(xs):\n<|frame_sep|>'
            '<|line_sep|>{"xs": ".."}<|action_sep|>    return {x: len(x) for x in xs}\n<|frame_sep|>'
            '<|call_sep|>{".0": "<list_iterator object>"}<|action_sep|>    return {x: len(x) for x in xs}\n<|frame_sep|>'
            '<|line_sep|>{".0": ".."}<|action_sep|>    return {x: len(x) for x in xs}\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "x": "\'a\'"}<|action_sep|>    return {x: len(x) for x in xs}\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "x": "\'bb\'"}<|action_sep|>    return {x: len(x) for x in xs}\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return {x: len(x) for x in xs}\n<|arg_sep|>"{\'a\': 1, \'bb\': 2}"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return {x: len(x) for x in xs}\n<|arg_sep|>"{\'a\': 1, \'bb\': 2}"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f([\'a\', \'bb\'])\n<|arg_sep|>"{\'a\': 1, \'bb\': 2}"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'genexp': (
        'def f(xs):\n    return sum(x for x in xs)',
        'f([1, 2])',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f([1, 2])\n<|frame_sep|>'
            '<|call_sep|>{"xs": "[1, 2]"}<|action_sep|>def f(xs):\n<|frame_sep|>'
            '<|line_sep|>{"xs": ".."}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|call_sep|>{".0": "<list_iterator object>"}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|line_sep|>{".0": ".."}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sum(x for x in xs)\n<|arg_sep|>"1"<|frame_sep|>'
            '<|call_sep|>{".0": "<list_iterator object>", "x": "1"}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "x": ".."}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sum(x for x in xs)\n<|arg_sep|>"2"<|frame_sep|>'
            '<|call_sep|>{".0": "<list_iterator object>", "x": "2"}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|line_sep|>{".0": "..", "x": ".."}<|action_sep|>    return sum(x for x in xs)\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sum(x for x in xs)\n<|arg_sep|>"None"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return sum(x for x in xs)\n<|arg_sep|>"3"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f([1, 2])\n<|arg_sep|>"3"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'generator': (
        'def gen(n):\n    for i in range(n):\n        yield i * 10\n\ndef f(n):\n    out = []\n    for v in gen(n):\n        out.append(v)\n    return out',
        'f(2)',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(2)\n<|frame_sep|>'
            '<|call_sep|>{"n": "2"}<|action_sep|>def f(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>    out = []\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "out": "[]"}<|action_sep|>    for v in gen(n):\n<|frame_sep|>'
            '<|call_sep|>{"n": "2"}<|action_sep|>def gen(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>    for i in range(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "i": "0"}<|action_sep|>        yield i * 10\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>        yield i * 10\n<|arg_sep|>"0"<|frame_sep|>'
            '<|line_sep|>{"n": "2", "out": "[]", "v": "0"}<|action_sep|>        out.append(v)\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "out": "[0]", "v": ".."}<|action_sep|>    for v in gen(n):\n<|frame_sep|>'
            '<|call_sep|>{"n": "2", "i": "0"}<|action_sep|>        yield i * 10\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "i": ".."}<|action_sep|>    for i in range(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "i": "1"}<|action_sep|>        yield i * 10\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>        yield i * 10\n<|arg_sep|>"10"<|frame_sep|>'
            '<|line_sep|>{"n": "2", "out": "[0]", "v": "10"}<|action_sep|>        out.append(v)\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "out": "[0, 10]", "v": ".."}<|action_sep|>    for v in gen(n):\n<|frame_sep|>'
            '<|call_sep|>{"n": "2", "i": "1"}<|action_sep|>        yield i * 10\n<|frame_sep|>'
            '<|line_sep|>{"n": "..", "i": ".."}<|action_sep|>    for i in range(n):\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    for i in range(n):\n<|arg_sep|>"None"<|frame_sep|>'
            '<|line_sep|>{"n": "2", "out": "[0, 10]", "v": "10"}<|action_sep|>    return out\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return out\n<|arg_sep|>"[0, 10]"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(2)\n<|arg_sep|>"[0, 10]"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'closure': (
        'def f(a):\n    def add(b):\n        return a + b\n    return add(2)',
        'f(1)',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(1)\n<|frame_sep|>'
            '<|call_sep|>{"a": "1"}<|action_sep|>def f(a):\n<|frame_sep|>'
            '<|line_sep|>{"a": ".."}<|action_sep|>    def add(b):\n<|frame_sep|>'
            '<|line_sep|>{"a": "..", "add": "<function f.<locals>.add>"}<|action_sep|>    return add(2)\n<|frame_sep|>'
            '<|call_sep|>{"b": "2", "a": "1"}<|action_sep|>    def add(b):\n<|frame_sep|>'
            '<|line_sep|>{"b": "..", "a": ".."}<|action_sep|>        return a + b\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>        return a + b\n<|arg_sep|>"3"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return add(2)\n<|arg_sep|>"3"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(1)\n<|arg_sep|>"3"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'recursion': (
        'def f(n):\n    if n <= 1:\n        return 1\n    return n * f(n - 1)',
        'f(2)',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(2)\n<|frame_sep|>'
            '<|call_sep|>{"n": "2"}<|action_sep|>def f(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>    if n <= 1:\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>    return n * f(n - 1)\n<|frame_sep|>'
            '<|call_sep|>{"n": "1"}<|action_sep|>def f(n):\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>    if n <= 1:\n<|frame_sep|>'
            '<|line_sep|>{"n": ".."}<|action_sep|>        return 1\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>        return 1\n<|arg_sep|>"1"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return n * f(n - 1)\n<|arg_sep|>"2"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(2)\n<|arg_sep|>"2"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'multiline': (
        'def f(a, b):\n    d = dict(\n        x=a,\n        y=b,\n    )\n    return d',
        'f(1, 2)',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(1, 2)\n<|frame_sep|>'
            '<|call_sep|>{"a": "1", "b": "2"}<|action_sep|>def f(a, b):\n<|frame_sep|>'
            '<|line_sep|>{"a": "..", "b": ".."}<|action_sep|>    d = dict(\n<|frame_sep|>'
            '<|line_sep|>{"a": "..", "b": ".."}<|action_sep|>        x=a,\n<|frame_sep|>'
            '<|line_sep|>{"a": "..", "b": ".."}<|action_sep|>        y=b,\n<|frame_sep|>'
            '<|line_sep|>{"a": "..", "b": ".."}<|action_sep|>    d = dict(\n<|frame_sep|>'
            '<|line_sep|>{"a": "..", "b": "..", "d": "{\'x\': 1, \'y\': 2}"}<|action_sep|>    return d\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return d\n<|arg_sep|>"{\'x\': 1, \'y\': 2}"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(1, 2)\n<|arg_sep|>"{\'x\': 1, \'y\': 2}"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'try_except': (
        'def f(x):\n    try:\n        y = 1 // x\n    except ZeroDivisionError:\n        y = -1\n    return y',
        'f(0)',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(0)\n<|frame_sep|>'
            '<|call_sep|>{"x": "0"}<|action_sep|>def f(x):\n<|frame_sep|>'
            '<|line_sep|>{"x": ".."}<|action_sep|>    try:\n<|frame_sep|>'
            '<|line_sep|>{"x": ".."}<|action_sep|>        y = 1 // x\n<|frame_sep|>'
            '<|exception_sep|><|action_sep|>        y = 1 // x\n<|arg_sep|>"ZeroDivisionError(\'integer division or modulo by zero\')"<|frame_sep|>'
            '<|line_sep|>{"x": ".."}<|action_sep|>    except ZeroDivisionError:\n<|frame_sep|>'
            '<|line_sep|>{"x": ".."}<|action_sep|>        y = -1\n<|frame_sep|>'
            '<|line_sep|>{"x": "..", "y": "-1"}<|action_sep|>    return y\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return y\n<|arg_sep|>"-1"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(0)\n<|arg_sep|>"-1"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'escaping': (
        'def g(x):\n    return 1 // x\n\ndef f(x):\n    y = g(x)\n    return y',
        'f(0)',
        Outcome.RAISED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f(0)\n<|frame_sep|>'
            '<|call_sep|>{"x": "0"}<|action_sep|>def f(x):\n<|frame_sep|>'
            '<|line_sep|>{"x": ".."}<|action_sep|>    y = g(x)\n<|frame_sep|>'
            '<|call_sep|>{"x": "0"}<|action_sep|>def g(x):\n<|frame_sep|>'
            '<|line_sep|>{"x": ".."}<|action_sep|>    return 1 // x\n<|frame_sep|>'
            '<|exception_sep|><|action_sep|>    return 1 // x\n<|arg_sep|>"ZeroDivisionError(\'integer division or modulo by zero\')"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return 1 // x\n<|arg_sep|>"None"<|frame_sep|>'
            '<|exception_sep|><|action_sep|>    y = g(x)\n<|arg_sep|>"ZeroDivisionError(\'integer division or modulo by zero\')"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    y = g(x)\n<|arg_sep|>"None"<|frame_sep|>'
            '<|exception_sep|><|action_sep|>    return f(0)\n<|arg_sep|>"ZeroDivisionError(\'integer division or modulo by zero\')"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(0)\n<|arg_sep|>"None"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'non_ascii': (
        "def f(s):\n    t = s + 'é'  # café\n    return t",
        "f('ü')",
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            "<|line_sep|>{}<|action_sep|>    return f('ü')\n<|frame_sep|>"
            '<|call_sep|>{"s": "\'\\u00fc\'"}<|action_sep|>def f(s):\n<|frame_sep|>'
            '<|line_sep|>{"s": ".."}<|action_sep|>    t = s + \'é\'  # café\n<|frame_sep|>'
            '<|line_sep|>{"s": "..", "t": "\'\\u00fc\\u00e9\'"}<|action_sep|>    return t\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return t\n<|arg_sep|>"\'\\u00fc\\u00e9\'"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f(\'ü\')\n<|arg_sep|>"\'\\u00fc\\u00e9\'"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'set_of_strings': (
        'def f(words):\n    s = set(words)\n    return len(s)',
        "f(['pear', 'apple', 'fig', 'kiwi'])",
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            "<|line_sep|>{}<|action_sep|>    return f(['pear', 'apple', 'fig', 'kiwi'])\n<|frame_sep|>"
            '<|call_sep|>{"words": "[\'pear\', \'apple\', \'fig\', \'kiwi\']"}<|action_sep|>def f(words):\n<|frame_sep|>'
            '<|line_sep|>{"words": ".."}<|action_sep|>    s = set(words)\n<|frame_sep|>'
            '<|line_sep|>{"words": "..", "s": "{\'pear\', \'kiwi\', \'apple\', \'fig\'}"}<|action_sep|>    return len(s)\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return len(s)\n<|arg_sep|>"4"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f([\'pear\', \'apple\', \'fig\', \'kiwi\'])\n<|arg_sep|>"4"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
    'default_repr': (
        'class Box:\n    pass\n\ndef f():\n    b = Box()\n    it = iter([1])\n    return 0',
        'f()',
        Outcome.RETURNED,
        (
            '<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    return f()\n<|frame_sep|>'
            '<|call_sep|>{}<|action_sep|>def f():\n<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>    b = Box()\n<|frame_sep|>'
            '<|line_sep|>{"b": "<__main__.Box object>"}<|action_sep|>    it = iter([1])\n<|frame_sep|>'
            '<|line_sep|>{"b": "..", "it": "<list_iterator object>"}<|action_sep|>    return 0\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return 0\n<|arg_sep|>"0"<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return f()\n<|arg_sep|>"0"<|frame_sep|>'
            '<|end_of_text|>'
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_trace(tracer, name):
    code, call, outcome, expected = GOLDEN[name]
    trace = tracer.trace_call(code, call)
    assert trace.outcome is outcome
    assert frames_to_text(trace.frames) == expected
