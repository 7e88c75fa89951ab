"""musicark: build music preservation archives.

The public API starts at `Archive`; each pipeline stage is a subpackage taking an Archive
(`musicark.catalog`, ...). See README.md.
"""

from musicark.archive import Archive
from musicark.config import PopularityModel, Settings
from musicark.errors import (
    ArchiveExists,
    ArchiveNotFound,
    BadConfig,
    BadQuery,
    BadSource,
    MusicarkError,
    NotInCatalog,
    SourceExists,
)

__version__ = "0.1.0"

__all__ = [
    "Archive",
    "ArchiveExists",
    "ArchiveNotFound",
    "BadConfig",
    "BadQuery",
    "BadSource",
    "MusicarkError",
    "NotInCatalog",
    "PopularityModel",
    "Settings",
    "SourceExists",
    "__version__",
]
