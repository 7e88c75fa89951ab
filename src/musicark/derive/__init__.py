"""Derive: Opus encodes for the long tail, tagged copies with byte-exact restore patches."""
