"""Fixity: audits of the store, releases, the catalog and any BagIt bag, and repair from
good copies (docs/fixity.md)."""

from musicark.verify.report import EXIT_CANNOT_RUN, EXIT_DAMAGE, EXIT_OK, Problem, Report
from musicark.verify.store import ScrubOptions, verify_store

__all__ = ["EXIT_CANNOT_RUN", "EXIT_DAMAGE", "EXIT_OK", "Problem", "Report", "ScrubOptions",
           "verify_store"]
