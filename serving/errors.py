"""A 400 in the data contract's words (issue 23): field, offending value, rule, suggestion.

BentoML answers a request pydantic rejects with ``{"error": "2 validation error for
PredictRequest", "detail": [{"type", "loc", "msg"}]}`` (no value, pydantic's wording); the
service answers the contract's rules across fields with ``{"loc", "msg"}`` items.
:func:`contract_words` turns either into one form, applied by the gateway to any 400 of that
shape.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from serving.logs import API_FIELDS

#: Most items reported in one 400 (``omitted`` counts the rest).
MAX_REPORTED = 50
#: Longest offending value echoed in a 400 (characters of a string).
MAX_VALUE_CHARS = 80
#: pydantic's wording -> the contract's (the start of a message).
_RULE_WORDS = (
    ("Input should be", "must be"),
    (
        "Extra inputs are not permitted",
        "unknown field: data contract {version} has no field of this name",
    ),
    ("Field required", "required by data contract {version}"),
)


_MISSING = object()


def contract_words(answer: Any, body: bytes) -> dict[str, Any] | None:
    """A 400 that lists violations, each with ``field``, ``value``, ``rule`` (and
    ``suggestion`` for an unknown field); None for any other answer (left as it is).

    Parameters
    ----------
    answer : object
        The 400's JSON body: ``{"error": ..., "detail": [{"loc": [...], "msg": ...}, ...]}``
        (pydantic's through BentoML, or the contract's own).
    body : bytes
        The request body, to quote the offending values from.
    """
    from features.schema import CONTRACT_REVISION

    if not isinstance(answer, dict) or not isinstance(answer.get("detail"), list):
        return None
    detail = answer["detail"]
    if not detail or not all(isinstance(d, dict) and "loc" in d for d in detail):
        return None
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        request = _MISSING
    version = f"v{CONTRACT_REVISION}"
    items = []
    for d in detail[:MAX_REPORTED]:
        loc = list(d.get("loc") or [])
        msg = str(d.get("msg", ""))
        rule = msg
        for before, after in _RULE_WORDS:
            if rule.startswith(before):
                rule = after.format(version=version) + rule[len(before) :]
                break
        names = [part for part in loc if isinstance(part, str)]
        item: dict[str, Any] = {"loc": loc, "field": names[-1] if names else None}
        value = _at(request, loc)
        if value is not _MISSING:
            item["value"] = _bounded(value)
        item["rule"] = rule
        item["msg"] = rule
        if d.get("type") == "extra_forbidden" and names:
            close = difflib.get_close_matches(names[-1], sorted(API_FIELDS), n=1)
            if close:
                item["suggestion"] = f"did you mean {close[0]!r}?"
        items.append(item)
    worded: dict[str, Any] = {
        "error": f"{len(detail)} violation(s) of data contract {version}",
        "detail": items,
    }
    if len(detail) > len(items):
        worded["omitted"] = len(detail) - len(items)
    return worded


def _at(tree: Any, loc: list[Any]) -> Any:
    node = tree
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return _MISSING
    return node


def _bounded(value: Any) -> Any:
    """The value as sent, or a summary when it is long (a string cut, a container counted)."""
    if isinstance(value, dict):
        return f"<object with {len(value)} key(s)>"
    if isinstance(value, list):
        return f"<list of {len(value)} item(s)>"
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + f"... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    return value


