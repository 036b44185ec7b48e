"""Member portraits, the tag catalog and audiences selected by tags."""
