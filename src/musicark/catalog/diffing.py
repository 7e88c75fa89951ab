"""Exact structural diffs between JSON values, so that rows plus a residual rebuild a record.

A catalog row keeps the fields it has columns for; `diff(record, view)` stores whatever the
row's view of the record does not reproduce exactly (types included: 1, 1.0 and true differ),
and `patch(view, d)` gives the record back. An empty diff is `None`.

Node forms: {"=": value} replaces; {"{": {"+": {k: v}, "-": [k], "~": {k: node}}} edits an
object; {"[": {"i": node}} edits a list of the same length.
"""

from __future__ import annotations

import math
from typing import Any


def same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1, 1.0 and True apart (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b) or (math.isnan(a) and math.isnan(b))
    return a == b


def diff(record: Any, view: Any) -> dict | None:
    """The smallest node that turns `view` into `record`, or None when they are the same."""
    if same(record, view):
        return None
    if isinstance(record, dict) and isinstance(view, dict):
        added = {k: v for k, v in record.items() if k not in view}
        removed = [k for k in view if k not in record]
        changed = {}
        for k, v in record.items():
            if k in view:
                sub = diff(v, view[k])
                if sub is not None:
                    changed[k] = sub
        edit: dict[str, Any] = {}
        if added:
            edit["+"] = added
        if removed:
            edit["-"] = removed
        if changed:
            edit["~"] = changed
        return {"{": edit}
    if isinstance(record, list) and isinstance(view, list) and len(record) == len(view):
        items = {}
        for i, (r, v) in enumerate(zip(record, view, strict=True)):
            sub = diff(r, v)
            if sub is not None:
                items[str(i)] = sub
        return {"[": items}
    return {"=": record}


def patch(view: Any, node: dict | None) -> Any:
    """Apply a node made by `diff` to a fresh view (the view is modified and returned)."""
    if node is None:
        return view
    if "=" in node:
        return node["="]
    if "{" in node:
        edit = node["{"]
        for k in edit.get("-", ()):
            view.pop(k, None)
        for k, sub in edit.get("~", {}).items():
            view[k] = patch(view[k], sub)
        view.update(edit.get("+", {}))
        return view
    if "[" in node:
        for i, sub in node["["].items():
            view[int(i)] = patch(view[int(i)], sub)
        return view
    raise ValueError(f"not a diff node: {node!r}")
