"""Audio analysis: loudness (ITU-R BS.1770-4 / EBU R128, ReplayGain 2.0), true peak, and
quality flags (clipping, silence, DC offset, mono as stereo, suspected lossy origin), per
file, stored in the catalog (docs/analysis.md)."""

from musicark.analyse.measure import Analysis, analyse_file

__all__ = ["Analysis", "analyse_file"]
