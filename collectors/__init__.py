"""Collectors: read Graph-shaped data (live, export directory, sample tenant) and turn it into facts."""
