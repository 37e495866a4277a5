"""Formats: bytes in, objects out (ramoops, phram records, ELF cores, .eh_frame, board.conf).

MicroPython-clean; imports only crashkeep.compat, crashkeep.errors, crashkeep.limits.
"""
