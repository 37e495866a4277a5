"""crashkeep: keep crash evidence across reboots on embedded Linux (ramoops, phram)."""

__version__ = "0.1.0"
