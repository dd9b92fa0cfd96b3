"""Hardness transfer (Mekala et al. 2024): how well one model's scores rank records for another,
with rank agreement, top-k overlap and their report.

May import ``tamis.base``, ``tamis.data``, ``tamis.model`` and ``tamis.scorers``.
"""
