# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Reed-Solomon for ramoops ECC: compiled twin of _rs_py.py (same names, same
answers; see there for the code's parameters and the kernel's decode steps).

The hot part is the syndrome pass over every 128-byte block of a zone: eight
roots per pass over the block, each a table lookup (x -> x * a^i) and an XOR,
so the eight chains run side by side.
"""
from libc.string cimport memset

IMPL = "c"

cdef int NN = 255
cdef unsigned char EXP[512]
cdef unsigned char LOG[256]
cdef unsigned char MT[255][256]      # MT[i][x] = x * a^i


cdef void _init_tables():
    cdef int i, x = 1
    for i in range(255):
        EXP[i] = x
        LOG[x] = i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        EXP[i] = EXP[i - 255]
    LOG[0] = 0
    for i in range(255):
        MT[i][0] = 0
        for x in range(1, 256):
            MT[i][x] = EXP[LOG[x] + i]


_init_tables()


cdef inline int gmul(int a, int b) nogil:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def _check(int nroots, Py_ssize_t n):
    if nroots < 1 or nroots > 254 or n < 0 or n > NN - nroots:
        raise ValueError("RS(%d) cannot cover a %d-byte block" % (nroots, n))


cdef int _gen(int nroots, int *g) nogil:
    cdef int i, j, root
    g[0] = 1
    for i in range(1, nroots + 1):
        g[i] = 0
    for i in range(nroots):
        root = EXP[i]
        for j in range(i + 1, 0, -1):
            g[j] ^= gmul(g[j - 1], root)
    return 0


def encode(msg, int nroots):
    cdef const unsigned char[:] m = msg
    _check(nroots, m.shape[0])
    cdef int g[256]
    cdef unsigned char par[256]
    cdef int j, fb
    cdef Py_ssize_t k
    _gen(nroots, g)
    memset(par, 0, 256)
    for k in range(m.shape[0]):
        fb = m[k] ^ par[0]
        for j in range(nroots - 1):
            par[j] = par[j + 1] ^ gmul(fb, g[j + 1])
        par[nroots - 1] = gmul(fb, g[nroots])
    return bytes(par[:nroots])


cdef int _syndromes(const unsigned char *data, int n, const unsigned char *par, int nroots,
                    int *s) nogil:
    """Fill s[0:nroots]; return non-zero when any syndrome is non-zero."""
    cdef int i = 0, j, nz = 0
    cdef unsigned char a0, a1, a2, a3, a4, a5, a6, a7, c
    cdef const unsigned char *r0
    cdef const unsigned char *r1
    cdef const unsigned char *r2
    cdef const unsigned char *r3
    cdef const unsigned char *r4
    cdef const unsigned char *r5
    cdef const unsigned char *r6
    cdef const unsigned char *r7
    while i + 8 <= nroots:
        r0 = MT[i]; r1 = MT[i + 1]; r2 = MT[i + 2]; r3 = MT[i + 3]
        r4 = MT[i + 4]; r5 = MT[i + 5]; r6 = MT[i + 6]; r7 = MT[i + 7]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0
        for j in range(n):
            c = data[j]
            a0 = r0[a0] ^ c; a1 = r1[a1] ^ c; a2 = r2[a2] ^ c; a3 = r3[a3] ^ c
            a4 = r4[a4] ^ c; a5 = r5[a5] ^ c; a6 = r6[a6] ^ c; a7 = r7[a7] ^ c
        for j in range(nroots):
            c = par[j]
            a0 = r0[a0] ^ c; a1 = r1[a1] ^ c; a2 = r2[a2] ^ c; a3 = r3[a3] ^ c
            a4 = r4[a4] ^ c; a5 = r5[a5] ^ c; a6 = r6[a6] ^ c; a7 = r7[a7] ^ c
        s[i] = a0; s[i + 1] = a1; s[i + 2] = a2; s[i + 3] = a3
        s[i + 4] = a4; s[i + 5] = a5; s[i + 6] = a6; s[i + 7] = a7
        nz |= a0 | a1 | a2 | a3 | a4 | a5 | a6 | a7
        i += 8
    while i < nroots:
        r0 = MT[i]
        a0 = 0
        for j in range(n):
            a0 = r0[a0] ^ data[j]
        for j in range(nroots):
            a0 = r0[a0] ^ par[j]
        s[i] = a0
        nz |= a0
        i += 1
    return nz


cdef int _correct(unsigned char *data, int n, unsigned char *par, int nroots, int *s) nogil:
    cdef int lam[256]
    cdef int b[256]
    cdef int t[256]
    cdef int omega[256]
    cdef int roots[256]
    cdef int locs[256]
    cdef int vals[256]
    cdef int pad = NN - nroots - n
    cdef int i, j, k, r, d, dinv, el = 0, deg = 0, count = 0, q, acc
    cdef int num1, num2, den, lden, top, fixed = 0, pos
    for i in range(nroots + 1):
        lam[i] = 0
        b[i] = 0
    lam[0] = 1
    b[0] = 1
    for r in range(1, nroots + 1):
        d = 0
        for i in range(r):
            if lam[i] and s[r - i - 1]:
                d ^= EXP[LOG[lam[i]] + LOG[s[r - i - 1]]]
        if d == 0:
            for i in range(nroots, 0, -1):
                b[i] = b[i - 1]
            b[0] = 0
            continue
        t[0] = lam[0]
        for i in range(nroots):
            t[i + 1] = lam[i + 1] ^ gmul(d, b[i])
        if 2 * el <= r - 1:
            el = r - el
            dinv = EXP[NN - LOG[d]]
            for i in range(nroots + 1):
                b[i] = gmul(lam[i], dinv)
        else:
            for i in range(nroots, 0, -1):
                b[i] = b[i - 1]
            b[0] = 0
        for i in range(nroots + 1):
            lam[i] = t[i]
    for i in range(nroots + 1):
        if lam[i]:
            deg = i
    if deg == 0:
        return -1
    for i in range(1, NN + 1):
        q = 0
        for j in range(deg + 1):
            if lam[j]:
                q ^= EXP[(LOG[lam[j]] + i * j) % NN]
        if q:
            continue
        if i - 1 < pad:
            return -1
        roots[count] = i
        locs[count] = i - 1
        count += 1
        if count == deg:
            break
    if count != deg:
        return -1
    for i in range(deg):
        acc = 0
        for j in range(i + 1):
            if s[i - j] and lam[j]:
                acc ^= EXP[LOG[s[i - j]] + LOG[lam[j]]]
        omega[i] = acc
    for k in range(deg):
        r = roots[k]
        num1 = 0
        for i in range(deg):
            if omega[i]:
                num1 ^= EXP[(LOG[omega[i]] + i * r) % NN]
        if num1 == 0:
            vals[k] = 0
            continue
        num2 = EXP[(NN - r) % NN]
        den = 0
        top = deg if deg < nroots - 1 else nroots - 1
        top &= ~1
        i = top
        while i >= 0:
            if lam[i + 1]:
                den ^= EXP[(LOG[lam[i + 1]] + i * r) % NN]
            i -= 2
        lden = LOG[den] if den else NN
        vals[k] = EXP[(LOG[num1] + LOG[num2] + NN - lden) % NN]
        fixed += 1
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
            data[pos] ^= vals[k]
        else:
            par[pos - n] ^= vals[k]
    return fixed


cdef int _decode(unsigned char *data, int n, unsigned char *par, int nroots) nogil:
    cdef int s[256]
    if not _syndromes(data, n, par, nroots, s):
        return 0
    return _correct(data, n, par, nroots, s)


def _bounds(Py_ssize_t length, Py_ssize_t off, Py_ssize_t n):
    if off < 0 or n < 0 or off + n > length:
        raise ValueError("block %d+%d outside a %d-byte buffer" % (off, n, length))


def decode(buf, Py_ssize_t off, Py_ssize_t n, Py_ssize_t poff, int nroots):
    cdef unsigned char[:] v = buf
    _check(nroots, n)
    _bounds(v.shape[0], off, n)
    _bounds(v.shape[0], poff, nroots)
    if v.shape[0] == 0:
        return 0
    return _decode(&v[0] + off, <int>n, &v[0] + poff, nroots)


def decode_blocks(buf, Py_ssize_t data_off, Py_ssize_t size, Py_ssize_t cap,
                  Py_ssize_t par_off, int nroots, int block=128):
    cdef unsigned char[:] v = buf
    cdef Py_ssize_t pos = 0, i = 0, n, length = v.shape[0]
    cdef int r, corrected = 0, bad = 0
    cdef unsigned char *base
    if block <= 0:
        raise ValueError("block size must be positive")
    if size > cap:
        size = cap                      # a ring never holds more than cap bytes
    if size <= 0:
        return 0, 0
    _check(nroots, block if block < cap else cap)
    # every block and parity slot the loop touches must lie inside buf
    _bounds(length, data_off, size)
    _bounds(length, par_off, ((size + block - 1) // block) * nroots)
    base = &v[0]
    with nogil:
        while pos < size:
            n = block if pos + block <= cap else cap - pos
            r = _decode(base + data_off + pos, <int>n, base + par_off + i * nroots, nroots)
            if r > 0:
                corrected += r
            elif r < 0:
                bad += 1
            pos += block
            i += 1
    return corrected, bad
