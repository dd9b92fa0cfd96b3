"""The HTML report of a score, select, clear, transfer or experiment folder: reading the folder,
the plots, and the page.

May import every stage below it (``base``, ``data``, ``model``, ``scorers``, ``select``,
``clear``, ``predict``, ``transfer``), never ``engines`` or ``cli``.
"""
