"""Subsonic responses: one payload tree rendered as the spec's XML or JSON.

A payload is a dict: scalars are XML attributes (JSON members), dicts are child elements,
lists are repeated child elements (JSON arrays), None is left out. Errors are HTTP 200 with
status="failed" and the spec's code, as every Subsonic client expects.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fastapi.responses import Response

from musicark import __version__
from musicark.serve.text import json_bytes, xml_text

PROTOCOL = "1.16.1"
NAMESPACE = "http://subsonic.org/restapi"
# Codes from the spec: 0 generic, 10 required parameter missing, 40 wrong username or
# password, 41 token auth not supported, 42-44 OpenSubsonic apiKey errors, 50 not
# authorized, 70 not found.
GENERIC, MISSING, WRONG_CREDENTIALS, NOT_AUTHORIZED, NOT_FOUND = 0, 10, 40, 50, 70
CONFLICTING_AUTH, BAD_API_KEY = 43, 44


class SubsonicError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _element(name: str, node: Any, out: list[str]) -> None:
    if not isinstance(node, dict):
        out.append(f"<{name}>{escape(xml_text(_scalar(node)))}</{name}>")
        return
    attrs = "".join(f" {k}={quoteattr(xml_text(_scalar(v)))}" for k, v in node.items()
                    if v is not None and not isinstance(v, dict | list) and k != "value")
    children: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict):
            _element(key, value, children)
        elif isinstance(value, list):
            for item in value:
                _element(key, item, children)
    text = escape(xml_text(_scalar(node["value"]))) if node.get("value") is not None else ""
    if children or text:
        out.append(f"<{name}{attrs}>{text}{''.join(children)}</{name}>")
    else:
        out.append(f"<{name}{attrs}/>")


def _envelope(status: str) -> dict[str, Any]:
    return {"status": status, "version": PROTOCOL, "type": "musicark",
            "serverVersion": __version__, "openSubsonic": True}


def _strip_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_strip_none(v) for v in node]
    return node


def render(payload: dict[str, Any], fmt: str, status: str = "ok") -> Response:
    """The response for `payload` (the members beside status/version) as XML or JSON."""
    body = {**_envelope(status), **payload}
    if fmt == "json":
        return Response(json_bytes({"subsonic-response": _strip_none(body)}),
                        media_type="application/json")
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _element("subsonic-response", {"xmlns": NAMESPACE, **body}, out)
    return Response("".join(out), media_type="text/xml; charset=utf-8")


def render_error(error: SubsonicError, fmt: str) -> Response:
    return render({"error": {"code": error.code, "message": error.message}}, fmt, "failed")
