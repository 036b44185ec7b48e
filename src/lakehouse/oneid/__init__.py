"""One ID: link every identifier of a person into one stable id (see docs/oneid.md)."""
