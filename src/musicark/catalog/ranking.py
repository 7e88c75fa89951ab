"""How well a track matches a search, combined with its popularity, as one score.

Ranking by match tier first ("title starts with the words" before everything else) put
obscure title-prefix matches above famous exact-word ones: at 1 M tracks the most popular
track with "love" in its title ranked 63rd for "love". A score weighs both instead:

- each query word counts by where it matches as a whole word: title 1.0, artists 0.85,
  album 0.6; half of that where it only begins a longer word (the word being typed);
- a title equal to the query's title words (the rest naming the artist) adds 1.0, a title
  that starts with the first word 0.4;
- popularity (0-100) adds up to 2.0.

So a whole-word title match of popularity 100 (5.0) beats an exact title of popularity 5
(4.5), which beats a title-prefix match of popularity 20 (3.8). Ties keep popularity order.
"""

from __future__ import annotations

from collections.abc import Sequence

FIELD_WEIGHTS = (1.0, 0.85, 0.6)  # title, artists, album
PARTIAL = 0.5  # a word that only begins a longer word
MATCH_WEIGHT = 3.0
EXACT_TITLE = 1.0
TITLE_START = 0.4
POPULARITY_WEIGHT = 2.0
TOP_SCORE = MATCH_WEIGHT + EXACT_TITLE + TITLE_START + POPULARITY_WEIGHT


def match_quality(words: Sequence[str], prefix: bool, fields: Sequence[Sequence[str]]
                  ) -> tuple[float, float]:
    """(share of the words matched, weighted by field, in 0-1; title bonus) for one track.

    `words` and each field's tokens are folded as the FTS tokenizer folds them; the last
    word may match as a prefix when `prefix`.
    """
    if not words:
        return 0.0, 0.0
    last = len(words) - 1
    total = 0.0
    in_title: list[str] = []
    for i, word in enumerate(words):
        best = 0.0
        for weight, tokens in zip(FIELD_WEIGHTS, fields, strict=False):
            if word in tokens:
                best = max(best, weight)
            elif prefix and i == last and any(t.startswith(word) for t in tokens):
                best = max(best, weight * PARTIAL)
        total += best
        title = fields[0] if fields else ()
        if word in title or (prefix and i == last and any(t.startswith(word) for t in title)):
            in_title.append(word)
    title = tuple(fields[0]) if fields else ()
    bonus = 0.0
    if title and in_title:
        if len(title) == len(in_title) and all(
                t == w or (prefix and w == words[last] and t.startswith(w))
                for t, w in zip(title, in_title, strict=True)):
            others = [w for w in words if w not in in_title]
            named = set(fields[1]) if len(fields) > 1 else set()
            if all(w in named for w in others):
                bonus += EXACT_TITLE
        first = words[0]
        if title[0] == first or (prefix and last == 0 and title[0].startswith(first)):
            bonus += TITLE_START
    return total / len(words), bonus


def score(words: Sequence[str], prefix: bool, fields: Sequence[Sequence[str]],
          popularity: int | None) -> float:
    quality, bonus = match_quality(words, prefix, fields)
    pop = min(max(popularity or 0, 0), 100)
    return MATCH_WEIGHT * quality + bonus + POPULARITY_WEIGHT * pop / 100


def rank_key(value: float) -> int:
    """A non-negative integer that sorts ascending as `value` sorts descending (cursors)."""
    return max(0, round((TOP_SCORE - value) * 10_000))
