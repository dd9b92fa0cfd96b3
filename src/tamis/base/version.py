"""tamis' version, written into every manifest (here so that no module imports the package root)."""

__version__ = "0.1.0"
