"""One module per command word (`crashkeep copy` -> copy.py); spec.py is how a command is declared.

Imports ops, system, formats and the base modules, never cli (typer lives only there).
"""
