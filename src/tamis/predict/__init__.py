"""Predicting a large model's loss from a small model's features (regression and its metrics).

May import ``tamis.base``, ``tamis.data``, ``tamis.model`` and ``tamis.scorers``.
"""
