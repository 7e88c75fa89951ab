"""Serve: a read-only web UI and JSON API over an archive (FastAPI, Jinja2)."""

from musicark.serve.app import create_app

__all__ = ["create_app"]
