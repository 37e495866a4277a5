"""Pure twin of _drain_c: drop up to `limit` bytes (all when limit < 0) of file f."""
IMPL = "py"


def drain(f, mv, limit=-1):
    """Read f into the memoryview mv until EOF or `limit` bytes; returns bytes read."""
    n = 0
    size = len(mv)
    while limit < 0 or n < limit:
        if limit >= 0 and limit - n < size:
            k = f.readinto(mv[:limit - n])
        else:
            k = f.readinto(mv)
        if not k:
            break
        n += k
    return n
