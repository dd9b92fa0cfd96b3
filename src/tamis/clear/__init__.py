"""CLEAR (Chen and Mueller 2024): the model's confidence that each response is good, and
auto-correct (a generated response replaces a low-confidence one only when the model prefers it).

May import ``tamis.base``, ``tamis.data``, ``tamis.model`` and ``tamis.scorers``.
"""
