"""System interfaces: syscalls, kernel modules, MTD, pstore, flash storage, the keep area, the copier.

Imports formats and the base modules, never ops, commands or cli.
"""
