"""Reed-Solomon over GF(2^8) as ramoops uses it: pure-Python twin of _rs_c.pyx.

Code: init_rs(symsize 8, gfpoly 0x11d, fcr 0, prim 1, nroots) in the kernel's
lib/reed_solomon (ram_core.c persistent_ram_init_ecc). Systematic, shortened
RS(255, 255 - nroots): a block of n <= 255 - nroots data bytes followed by
nroots parity bytes, first byte = highest-degree coefficient; the parity is
msg(x) * x^nroots mod g(x), g(x) = prod_{i<nroots} (x - a^i), a = 0x02.

The decoder follows the same steps and gives up in the same cases as the
kernel's decode_rs8 (Berlekamp-Massey, Chien search, Forney, then a check
that the error pattern reproduces the syndromes), so its count of corrected
bytes and its verdict match the ECC notice the kernel prints. Every loop is
bounded by 255 or nroots: no input can make it spin.
"""

IMPL = "py"
NN = 255
GF_POLY = 0x11D


def _tables():
    exp = bytearray(512)
    log = bytearray(256)
    x = 1
    for i in range(NN):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= GF_POLY
    for i in range(NN, 512):
        exp[i] = exp[i - NN]
    return exp, log


EXP, LOG = _tables()
_gen_cache = {}
_mul_cache = {}


def _gmul(a, b):
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def generator(nroots):
    """g(x) coefficients, highest degree first (monic: g[0] == 1)."""
    g = _gen_cache.get(nroots)
    if g is None:
        g = [1]
        for i in range(nroots):
            root = EXP[i]
            nxt = g + [0]
            for j in range(len(g)):
                nxt[j + 1] ^= _gmul(g[j], root)
            g = nxt
        _gen_cache[nroots] = g
    return g


def _check_nroots(nroots, n):
    if nroots < 1 or nroots > 254 or n < 0 or n > NN - nroots:
        raise ValueError("RS(%d) cannot cover a %d-byte block" % (nroots, n))


def encode(msg, nroots):
    """Parity bytes (nroots of them) for msg, as encode_rs8 computes them."""
    _check_nroots(nroots, len(msg))
    reg = _parity_int(msg, 0, len(msg), nroots)
    par = bytearray(nroots)
    for j in range(nroots - 1, -1, -1):
        par[j] = reg & 0xFF
        reg >>= 8
    return bytes(par)


_par_cache = {}


def _parity_table(nroots):
    """T[f] = the parity register (an int, parity[0] in the top byte) that a
    feedback byte f XORs in: one lookup per message byte instead of nroots."""
    t = _par_cache.get(nroots)
    if t is None:
        g = generator(nroots)
        t = []
        for fb in range(256):
            v = 0
            for j in range(nroots):
                v = (v << 8) | _gmul(fb, g[j + 1])
            t.append(v)
        _par_cache[nroots] = t
    return t


def _parity_int(buf, off, n, nroots):
    # encode_rs8's LFSR with the whole register in one int
    t = _parity_table(nroots)
    top = 8 * (nroots - 1)
    mask = (1 << (8 * nroots)) - 1
    reg = 0
    for j in range(off, off + n):
        reg = ((reg << 8) & mask) ^ t[(reg >> top) ^ buf[j]]
    return reg


def _mul_tables(nroots):
    """Per root i, the table x -> x * a^i (the syndrome inner loop)."""
    t = _mul_cache.get(nroots)
    if t is None:
        t = []
        for i in range(nroots):
            row = bytearray(256)
            for x in range(1, 256):
                row[x] = EXP[LOG[x] + i]
            t.append(bytes(row))
        _mul_cache[nroots] = t
    return t


def syndromes(buf, off, n, poff, nroots):
    """S_i = c(a^i) for the codeword buf[off:off+n] + buf[poff:poff+nroots]."""
    mt = _mul_tables(nroots)
    s = []
    for i in range(nroots):
        row = mt[i]
        acc = 0
        for j in range(off, off + n):
            acc = row[acc] ^ buf[j]
        for j in range(poff, poff + nroots):
            acc = row[acc] ^ buf[j]
        s.append(acc)
    return s


def decode(buf, off, n, poff, nroots):
    """Correct one block in place (data at buf[off:off+n], parity at
    buf[poff:poff+nroots]; buf must be writable). Returns the number of
    corrected bytes (0: clean) or -1 when the block cannot be corrected
    (then buf is left as it was)."""
    _check_nroots(nroots, n)
    if off < 0 or poff < 0 or off + n > len(buf) or poff + nroots > len(buf):
        raise ValueError("block outside a %d-byte buffer" % len(buf))
    # The common case, a clean block, costs one LFSR pass: the parity it
    # computes equals the stored one exactly when every syndrome is zero.
    stored = 0
    for j in range(poff, poff + nroots):
        stored = (stored << 8) | buf[j]
    if _parity_int(buf, off, n, nroots) == stored:
        return 0
    s = syndromes(buf, off, n, poff, nroots)
    nz = 0
    for v in s:
        nz |= v
    if not nz:
        return 0
    return _correct(buf, off, n, poff, nroots, s)


def _correct(buf, off, n, poff, nroots, s):
    pad = NN - nroots - n
    # Berlekamp-Massey, polynomials in ordinary (not log) form, low degree first.
    lam = [0] * (nroots + 1)
    lam[0] = 1
    b = [0] * (nroots + 1)
    b[0] = 1
    el = 0
    for r in range(1, nroots + 1):
        d = 0
        for i in range(r):
            if lam[i] and s[r - i - 1]:
                d ^= EXP[LOG[lam[i]] + LOG[s[r - i - 1]]]
        if d == 0:
            b = [0] + b[:nroots]
            continue
        t = [lam[0]] + [lam[i + 1] ^ _gmul(d, b[i]) for i in range(nroots)]
        if 2 * el <= r - 1:
            el = r - el
            dinv = EXP[NN - LOG[d]]
            b = [_gmul(x, dinv) for x in lam]
        else:
            b = [0] + b[:nroots]
        lam = t
    deg = 0
    for i in range(nroots + 1):
        if lam[i]:
            deg = i
    if deg == 0:
        return -1
    # Chien search: X^-1 = a^i for i = 1..255; location (from the first
    # symbol of the full 255-symbol word) is i - 1.
    roots = []
    locs = []
    for i in range(1, NN + 1):
        q = 0
        for j in range(deg + 1):
            if lam[j]:
                q ^= EXP[(LOG[lam[j]] + i * j) % NN]
        if q:
            continue
        if i - 1 < pad:
            return -1           # an error in the bytes the shortened code never sends
        roots.append(i)
        locs.append(i - 1)
        if len(roots) == deg:
            break
    if len(roots) != deg:
        return -1
    # omega(x) = s(x) * lambda(x) mod x^nroots, terms up to deg - 1
    omega = []
    for i in range(deg):
        acc = 0
        for j in range(i + 1):
            if s[i - j] and lam[j]:
                acc ^= EXP[LOG[s[i - j]] + LOG[lam[j]]]
        omega.append(acc)
    vals = []
    fixed = 0
    for k in range(deg):
        r = roots[k]
        num1 = 0
        for i in range(deg):
            if omega[i]:
                num1 ^= EXP[(LOG[omega[i]] + i * r) % NN]
        if num1 == 0:
            vals.append(0)
            continue
        num2 = EXP[(NN - r) % NN]                  # (X^-1)^(fcr - 1) with fcr = 0
        den = 0
        top = min(deg, nroots - 1) & ~1
        for i in range(top, -1, -2):
            if lam[i + 1]:
                den ^= EXP[(LOG[lam[i + 1]] + i * r) % NN]
        # den == 0 cannot happen for a true locator; the kernel then uses
        # log(0) = NN and lets the syndrome check below reject the result.
        lden = LOG[den] if den else NN
        vals.append(EXP[(LOG[num1] + LOG[num2] + NN - lden) % NN])
        fixed += 1
    # The pattern must reproduce every syndrome, or it is a miscorrection.
    for i in range(nroots):
        acc = 0
        for k in range(deg):
            if vals[k]:
                acc ^= EXP[(LOG[vals[k]] + i * (NN - locs[k] - 1)) % NN]
        if acc != s[i]:
            return -1
    for k in range(deg):
        if not vals[k]:
            continue
        pos = locs[k] - pad
        if pos < n:
            buf[off + pos] ^= vals[k]
        else:
            buf[poff + pos - n] ^= vals[k]
    return fixed


def decode_blocks(buf, data_off, size, cap, par_off, nroots, block=128):
    """Decode every block of a zone ring that covers [0, size), as
    persistent_ram_ecc_old does: block i is data[i*block : min((i+1)*block,
    cap)], its parity at par_off + i*nroots. Returns (corrected, bad_blocks)."""
    if size > cap:
        size = cap                      # a ring never holds more than cap bytes
    if size <= 0:
        return 0, 0
    _check_nroots(nroots, min(block, cap))
    nblocks = (size + block - 1) // block
    if data_off < 0 or par_off < 0 or data_off + size > len(buf) or \
            par_off + nblocks * nroots > len(buf):
        raise ValueError("zone blocks outside a %d-byte buffer" % len(buf))
    corrected = 0
    bad = 0
    i = 0
    pos = 0
    while pos < size:
        n = block if pos + block <= cap else cap - pos
        r = decode(buf, data_off + pos, n, par_off + i * nroots, nroots)
        if r > 0:
            corrected += r
        elif r < 0:
            bad += 1
        pos += block
        i += 1
    return corrected, bad
