"""Listening data (scrobbles, histories, radio logs) matched to catalog tracks, counted per
track, source and month; the observed listens that plan, stats and serve use."""

from musicark.listens.formats import NAMES as FORMAT_NAMES
from musicark.listens.match import match_listens
from musicark.listens.store import import_listens

__all__ = ["FORMAT_NAMES", "import_listens", "match_listens"]
