"""Records in and out: the record types and formats, readers (local files and URLs), the score
and selection writers, and the noise injected for benchmarks.

May import ``tamis.base`` only.
"""
