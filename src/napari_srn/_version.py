"""The package version, in a leaf module that anything may import."""

__version__ = "0.1.0.dev0"
