"""One explicit settings object, read from an archive's `musicark.toml`."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from musicark.errors import BadConfig

CONFIG_NAME = "musicark.toml"

DEFAULT_TOML = """\
# musicark archive settings. Every key is optional; these are the defaults.

[archive]
name = "{name}"

[popularity]
# Expected listens for a track with popularity score p (0-100) and no known count:
#   listens(p) = exp(a + b * p)  for p >= 1,   zero_listens  for p == 0
# Calibrated against the reference release's statistics (see docs/listens-model.md).
a = {a}
b = {b}
zero_listens = {zero}
"""


@dataclass(frozen=True)
class PopularityModel:
    """Parameters of the popularity → expected listens curve (documented in docs/)."""

    a: float = 6.4
    b: float = 0.15
    zero_listens: float = 112.5


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one archive."""

    name: str = "musicark archive"
    popularity: PopularityModel = field(default_factory=PopularityModel)

    @classmethod
    def load(cls, path: Path) -> Settings:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise BadConfig(f"{path}: {exc}") from exc
        archive = data.get("archive", {})
        pop = data.get("popularity", {})
        try:
            model = PopularityModel(**{k: float(v) for k, v in pop.items()})
        except (TypeError, ValueError) as exc:
            raise BadConfig(f"{path}: [popularity]: {exc}") from exc
        return cls(name=str(archive.get("name", cls.name)), popularity=model)

    def to_toml(self) -> str:
        m = self.popularity
        name = self.name.replace("\\", "\\\\").replace('"', '\\"')
        return DEFAULT_TOML.format(name=name, a=m.a, b=m.b, zero=m.zero_listens)
