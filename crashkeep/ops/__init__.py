"""Operations several commands share (boot state, bundles, core reports).

Imports system, formats and the base modules, never commands or cli.
"""
