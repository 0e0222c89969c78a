"""Reading gwbench's JSON reports and printing tables: what compare.sh and
sweep.sh share (both run with PYTHONPATH=bench)."""

import json


def load(path):
    """The report at path, or None when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(d, path):
    """d["a"]["b"] for "a.b", or None where any step is missing."""
    for k in path.split("."):
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def num(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


def ms(x):
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def share(x):
    if x is None:
        return "-"
    return "100 %" if x >= 1 else f"{100 * x:.3f} %"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:,.2f}x"


def table(head, rows, left):
    """Lines of an aligned table; column `left` is left-aligned, the others
    right-aligned."""
    w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def fmt(r):
        return "  ".join(c.ljust(w[i]) if i == left else c.rjust(w[i])
                         for i, c in enumerate(r)).rstrip()
    return [fmt(head), fmt(["-" * n for n in w])] + [fmt(r) for r in rows]
