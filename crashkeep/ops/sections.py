"""What `crashkeep list` prints: one Section per kind of kept evidence; the
commands that keep evidence (the keep area, salvaged bundles) each make theirs."""


class Section:
    """title, column names, rows (lists of str), and the same data for --json."""

    def __init__(self, key, title, columns, rows, items):
        self.key = key
        self.title = title
        self.columns = columns
        self.rows = rows
        self.items = items


def when(t):
    if not t:
        return "-"
    import time
    try:
        y, mo, d, h, mi, s = time.gmtime(int(t))[:6]
    except (OverflowError, ValueError, OSError):
        return "@%d" % t        # a time no calendar holds (a record's u64, 2^63): raw seconds
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)
