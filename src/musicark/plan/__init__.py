"""Planning: how many listens a track is worth, and what to keep for a storage budget."""
