"""Fixity: audits of the store, releases, the catalog and any BagIt bag, and repair from
good copies (docs/fixity.md). Repair lives in `musicark.verify.repair` (it builds on derive,
which itself reports damage through `musicark.verify.damage`)."""

from musicark.verify.catalog import verify_catalog
from musicark.verify.releases import verify_release_dir, verify_releases
from musicark.verify.report import EXIT_CANNOT_RUN, EXIT_DAMAGE, EXIT_OK, Problem, Report
from musicark.verify.run import run_verify
from musicark.verify.shard import validate_bag
from musicark.verify.store import ScrubOptions, verify_store

__all__ = ["EXIT_CANNOT_RUN", "EXIT_DAMAGE", "EXIT_OK", "Problem", "Report", "ScrubOptions",
           "run_verify", "validate_bag", "verify_catalog", "verify_release_dir",
           "verify_releases", "verify_store"]
