"""Selectors: the rules that turn score columns into kept and dropped records (thresholds,
filters, the junk cut, a record or token budget) and the selection methods from the literature
(top by a score, S2L's balanced trajectory clusters, DEITA-style diversity).

Scorers never drop; selectors do. May import ``tamis.base``, ``tamis.data``, ``tamis.model``
and ``tamis.scorers``. The public names are re-exported here::

    from tamis.select import Selection, select
"""

from tamis.select.options import Filter, parse_filter, parse_keep
from tamis.select.selection import Decision, Selection, check_columns, select

__all__ = [
    "Decision",
    "Filter",
    "Selection",
    "check_columns",
    "parse_filter",
    "parse_keep",
    "select",
]
