"""lwsbuild: a reproducible, verifiably fixed libwebsockets."""

__version__ = "0.1.0"
