"""The ground floor: errors, atomic file writes, maths and metrics, and the version.

Pure helpers with no model and no data format in them. May import nothing of tamis outside
``tamis.base``; everything else may import from here.
"""
