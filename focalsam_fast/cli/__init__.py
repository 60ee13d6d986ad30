"""Command-line interface: ``focalsam train | presets | eval``."""
