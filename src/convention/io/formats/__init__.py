"""The data formats, one module each; every module registers its reader
(``convention.io.registry``) and holds the format's own helpers (and writer, where the
format has one)."""
