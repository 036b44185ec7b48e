"""Silver layer: typed, cleaned, deduplicated tables built from bronze's as-delivered strings."""
