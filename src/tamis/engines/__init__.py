"""Jobs: the work of each command as a function of objects and paths, placed locally or on Ray
(``tamis.engines.ray``). A job reads the input, runs the stages, writes the output folder and its
manifest, and resumes what an interrupted run left.

May import every stage and ``tamis.report``; never ``tamis.cli``.
"""
