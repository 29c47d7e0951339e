"""The one place the version lives; every module that stamps a manifest imports it from here."""

__version__ = "0.1.0"
