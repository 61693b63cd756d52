"""The compiled context mixer of schemes ``cm2``-``cm6``: one lockstep step codes one byte of every live segment.

Why compiled (numba): a context mixer makes ~30 small decisions per bit; in numpy every one is a call
whose overhead dwarfs the arithmetic, so ``cm1`` could only afford a few contexts and stayed slow. Here
one compiled call codes one lockstep step (one byte of every live segment), so the predictor can afford
checked hash slots, two adaptation speeds per context, word contexts and a match model, and still run
much faster than the network beside it.

Why it is exact: after the network's float logits are rounded to integers (the only float step: to 1/16
nat, as cm1 did), everything is integer arithmetic on integer tables built once in
:mod:`.fixedpoint`; segments are processed in a fixed order within a step, so the shared tables see the
same updates in the same order in encoder and decoder. Encoder and decoder run this same function; the
only difference is where a bit comes from (the data, or the arithmetic decoder).

What a segment may read: its own history, the shared tables, and the reconstruction buffer ``buf``,
which holds exactly the bytes already coded (zeros elsewhere) on both sides.

Inputs per binary decision, mixed by six weight sets (chosen by partial byte, match state, previous
byte, how many context orders have been seen x bit position, the network's confidence, the byte before
last; later layouts add more), then a final mixer per partial byte, then three APMs (order 0, 1, hashed
2; cm4 adds a fourth):

* bias;
* per context (order 0, 1 direct; orders 2, 3, 4, 5, 6, 8, current word, word bigram and the sparse bytes
  2-3, hashed with a check byte, two slots per bucket, the less-seen one evicted): a slow, count-adaptive
  probability, a fast one, and what slots with this count and recent bit history have meant so far
  (an adaptive map shared by all contexts of that order: paq's indirect "state map", simplified);
* the network's bit probability, raw and recalibrated per order-1 and per hashed order-2 context;
* an online logistic regression from the network's last hidden state, one weight row per partial byte,
  which learns on the data being coded what the network's fixed output layer misses;
* the match model's learned probability and a length-signed confidence.

What differs between schemes is not this code but the :class:`.mixer_layout.Layout` it is handed: the
shapes of the tables (:mod:`.mixer_tables`) and the rates in ``opts``. The network's distribution
enters as float logits (the float networks of cm2-cm5) or as exact integers handed over as floats (the
integer network of cm6, :func:`.intnet.mixer_inputs`).

Any change to the arithmetic below changes the bitstream of every scheme above, whose members must keep
decoding (``tests/data/lm_v*_payload.bin``): a new arithmetic needs a new function and a new scheme name.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .bitcoder import decode_bit, encode_bit
from .fixedpoint import STRETCH_LIMIT
from .mixer_layout import (CLASS_BITS, KIND_CLASSES_C1, KIND_COLUMN, KIND_SHAPE, N_HASHED, N_OPTS, OPT_APM_RATE,
                           OPT_APM_W, OPT_CMAP_RATE, OPT_FAST_SHIFT, OPT_FIN_LR, OPT_FIN_SHIFT, OPT_FLAGS,
                           OPT_HID_LR, OPT_HID_SHIFT, OPT_MATCH_MAX, OPT_MATCH_MIN, OPT_MATCH_VERIFY, OPT_MIX_BOOST,
                           OPT_MIX_LR, OPT_MIX_SHIFT, OPT_SKIP_ERR, PER_CTX)
from .mixer_tables import EMPTY_SLOT

_G1 = np.uint64(0x9E3779B97F4A7C15)
_G2 = np.uint64(0xBF58476D1CE4E5B9)
_G3 = np.uint64(0x94D049BB133111EB)
_S29 = np.uint64(29)
_S32 = np.uint64(32)
_B8 = np.uint64(8)
_M8 = np.uint64(255)


@njit(inline="always")
def _hash(x, k):
    x = (x + k) * _G1
    x ^= x >> _S29
    x *= _G2
    x ^= x >> _S32
    return x


@njit(inline="always")
def _apm_read(t, base, st):
    """Interpolated 16-bit probability and the index of the nearer knot, for stretched input ``st``."""
    pos = (st + 2048) * 32
    j = pos >> 12
    w = pos & 4095
    i = base * 33 + j
    p = (t[i] * (4096 - w) + t[i + 1] * w) >> 12
    return p, i + (w >> 11)


@njit(inline="always")
def _apm_learn(t, knot, bit, rate):
    target = 65535 if bit else 0
    v = t[knot] + ((target - t[knot]) >> rate)
    t[knot] = min(max(v, 16), 65535 - 16)


@njit(cache=True, nogil=True)
def code_step(decode, live, t, logits, hid, starts, src, buf, coder, stream,
              slots, limits, hash_bits, mw, set_off, fw, opts, apm, nn_apm, hw, cmap, msm, msn, mt, match_bits,
              hist, classes, shape, w0, w1, w2, lines, mptr, mlen, stretch, squash, expt, rate, ctab):
    """Code (``decode`` = 0) or decode (1) byte ``t`` of the first ``live`` segments, in segment order.

    ``stream`` is the coder's output (encoding) or input (decoding) byte array; ``coder`` its state.
    The scheme is in the tables' shapes (weight sets in ``set_off``, final-mixer rows in ``fw``) and in
    ``opts`` (:meth:`.mixer_layout.Layout.opts`: the rates, the layout flags, the update-skip threshold,
    then the kind of each extra hashed context).
    """
    size = buf.shape[0]
    hshift = np.uint64(64 - hash_bits)
    cshift = np.uint64(56 - hash_bits)
    region = np.int64(1) << hash_bits
    mshift = np.uint64(64 - match_bits)
    nset = set_off.shape[0]
    by_match = fw.shape[0] > 256
    tree = np.zeros(512, dtype=np.int64)
    n_ctx = limits.shape[0]
    n_hashed = n_ctx - 2
    n_in = mw.shape[1]
    ctxh = np.zeros(n_hashed, dtype=np.uint64)
    idx = np.zeros(n_ctx, dtype=np.int64)
    cknot = np.zeros(n_ctx, dtype=np.int64)
    hq = np.zeros(hid.shape[1], dtype=np.int64)
    x = np.zeros_like(mw[0])
    x[0] = 256
    sel = np.zeros(nset, dtype=np.int64)
    pk = np.zeros(nset, dtype=np.int64)
    x2 = np.zeros(nset + 1, dtype=np.int64)
    x2[nset] = 256
    nn_in = 1 + PER_CTX * n_ctx
    apm4 = (opts[OPT_FLAGS] & 1) != 0
    k4 = np.int64(0)
    cbits = np.uint64(CLASS_BITS)
    cmask = np.uint64((1 << CLASS_BITS) - 1)
    skip_err = opts[OPT_SKIP_ERR]
    mix_shift, fin_lr, fin_shift = opts[OPT_MIX_SHIFT], opts[OPT_FIN_LR], opts[OPT_FIN_SHIFT]
    apm_rate, apm_w, cmap_rate = opts[OPT_APM_RATE], opts[OPT_APM_W], opts[OPT_CMAP_RATE]
    fast_shift, hid_lr, hid_shift = opts[OPT_FAST_SHIFT], opts[OPT_HID_LR], opts[OPT_HID_SHIFT]
    match_min, match_verify, match_max = opts[OPT_MATCH_MIN], opts[OPT_MATCH_VERIFY], opts[OPT_MATCH_MAX]
    # The match model hashes the last min(match_min, 8) bytes.
    match_mask = np.uint64(0xFFFFFFFFFFFFFFFF)
    if match_min < 8:
        match_mask = (np.uint64(1) << np.uint64(8 * match_min)) - np.uint64(1)
    # Mixer learning rate: faster while the weights are still far from trained (the first steps).
    mlr = opts[OPT_MIX_LR] + (opts[OPT_MIX_LR] * opts[OPT_MIX_BOOST]) // (1 + t // 64)
    for s in range(live):
        pos = starts[s] + t
        # --- the network's distribution as integer weights, summed up the bit tree
        qmax = np.int64(-(1 << 40))
        for b in range(256):
            v = np.float64(logits[s, b])
            if not (v == v):
                v = 0.0
            v = min(max(v, -1e4), 1e4)
            q = np.int64(np.floor(v * 16.0 + 0.5))
            tree[256 + b] = q
            qmax = max(qmax, q)
        for b in range(256):
            tree[256 + b] = expt[min(qmax - tree[256 + b], 255)] + 1
        for i in range(255, 0, -1):
            tree[i] = tree[2 * i] + tree[2 * i + 1]
        # --- the network's hidden state, quantised (the only other float input)
        nh = hid.shape[1]
        for i in range(nh):
            v = np.float64(hid[s, i])
            if not (v == v):
                v = 0.0
            hq[i] = min(max(np.int64(np.floor(v * 64.0 + 0.5)), -127), 127)
        # --- per-byte contexts
        h = hist[s]
        c1 = np.int64(h & _M8)
        c2 = np.int64((h >> _B8) & _M8)
        ctxh[0] = _hash(h & np.uint64(0xFFFF), np.uint64(1 << 56))
        ctxh[1] = _hash(h & np.uint64(0xFFFFFF), np.uint64(2 << 56))
        ctxh[2] = _hash(h & np.uint64(0xFFFFFFFF), np.uint64(3 << 56))
        ctxh[3] = _hash(h & np.uint64(0xFFFFFFFFFF), np.uint64(4 << 56))
        ctxh[4] = _hash(h & np.uint64(0xFFFFFFFFFFFF), np.uint64(5 << 56))
        ctxh[5] = _hash(h, np.uint64(6 << 56))
        wa = w0[s] if w0[s] != 0 else (w1[s] ^ (np.uint64(c1) << np.uint64(48)))
        ctxh[6] = _hash(wa, np.uint64(7 << 56))
        ctxh[7] = _hash(w0[s] + w1[s] * _G3, np.uint64(8 << 56))
        ctxh[8] = _hash((h >> _B8) & np.uint64(0xFFFF), np.uint64(9 << 56))
        # The byte above (same column, previous line) with the previous byte: aligned lines, tables, lists.
        ls, ps = lines[s, 0], lines[s, 1]
        if ls < 0:
            ls = starts[s]
        above = np.int64(256)
        if ps >= 0 and ps + (pos - ls) < ls:
            above = np.int64(buf[ps + (pos - ls)])
        ctxh[9] = _hash(np.uint64(above | (c1 << 9)), np.uint64(10 << 56))
        ctxh[10] = _hash(w0[s] + w1[s] * _G3 + w2[s] * _G1, np.uint64(12 << 56))
        for e in range(n_hashed - N_HASHED):
            kind = opts[N_OPTS + e]
            if kind == KIND_SHAPE:
                v = _hash(shape[s, 0], np.uint64(min(shape[s, 1], 15)))
            elif kind == KIND_COLUMN:
                v = np.uint64(min(pos - ls, 127) | (c1 << 8))
            elif kind == KIND_CLASSES_C1:
                v = _hash(classes[s] & np.uint64(0xFFFFFFFF), np.uint64(c1))
            else:  # 1CB: the classes of the last C bytes (at most 16) with the last B bytes
                ncl = np.uint64(min((kind - 100) // 10 * CLASS_BITS, 64))
                nby = np.uint64((kind % 10) * 8)
                cm_ = (np.uint64(1) << ncl) - np.uint64(1) if ncl < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
                bm_ = (np.uint64(1) << nby) - np.uint64(1)
                v = _hash(classes[s] & cm_, h & bm_) + np.uint64(kind)
            # (13 + kind) << 56 keeps the low 8 bits of 13 + kind for three-digit kinds (int64 shift wraps).
            ctxh[N_HASHED + e] = _hash(v, np.uint64((13 + kind) << 56))
        h12 = ((c1 * 0x2F1 + c2 * 0x1D3) & 0xFF) << 8
        ml = mlen[s]
        expected = np.int64(buf[mptr[s]]) | 256 if ml > 0 else np.int64(0)
        c0 = np.int64(1)
        for j in range(8):
            # --- counters: direct o0/o1, then checked hash slots (two per bucket, low count evicted)
            idx[0] = c0
            idx[1] = 256 + ((c1 << 8) | c0)
            cm = np.uint64(c0) * _G2
            found = 0
            for k in range(n_hashed):
                hx = _hash(ctxh[k] ^ cm, np.uint64(0))
                i0 = 256 + 65536 + k * region + np.int64(hx >> hshift)
                chk = np.int64((hx >> cshift) & _M8)
                if ((slots[i0] >> 40) & 255) == chk:
                    sl = i0
                elif ((slots[i0 ^ 1] >> 40) & 255) == chk:
                    sl = i0 ^ 1
                else:
                    sl = i0 if ((slots[i0] >> 32) & 255) <= ((slots[i0 ^ 1] >> 32) & 255) else i0 ^ 1
                    slots[sl] = EMPTY_SLOT | (chk << 40)
                idx[2 + k] = sl
                if k < 6 and ((slots[sl] >> 32) & 255) > 0:
                    found += 1
            for k in range(n_ctx):
                v = slots[idx[k]]
                n = (v >> 32) & 255
                sp = stretch[(v & 0xFFFF) >> 4]
                # What a slot with this count and probability has meant so far, learnt across contexts.
                m = min(n, 4)
                hs = (1 << m) - 1 + ((v >> 48) & ((1 << m) - 1))
                if n >= 12:
                    hs += 31
                pc, cknot[k] = _apm_read(cmap, k * 64 + hs, sp)
                x[1 + PER_CTX * k] = stretch[pc >> 4]
                if n > 0:
                    x[2 + PER_CTX * k] = sp
                    x[3 + PER_CTX * k] = stretch[((v >> 16) & 0xFFFF) >> 4]
                else:
                    x[2 + PER_CTX * k] = 0
                    x[3 + PER_CTX * k] = 0
            # --- network, raw and recalibrated per (previous byte, partial byte)
            pn = (tree[2 * c0 + 1] << 12) // tree[c0]
            pn = min(max(pn, 1), 4095)
            sn = stretch[pn]
            x[nn_in] = sn
            pa, nknot = _apm_read(nn_apm, (c1 << 8) | c0, sn)
            x[nn_in + 1] = stretch[pa >> 4]
            pa2, nknot2 = _apm_read(nn_apm, 65536 + (h12 | c0), sn)
            x[nn_in + 2] = stretch[pa2 >> 4]
            dh = np.int64(0)
            for i in range(nh):
                dh += hw[c0, i] * hq[i]
            dh = min(max(dh >> 14, -STRETCH_LIMIT), STRETCH_LIMIT)
            ph = squash[dh + STRETCH_LIMIT]
            x[nn_in + 5] = dh
            # --- match model
            msi = -1
            if expected > 0 and (expected >> (8 - j)) == c0:
                pbit = (expected >> (7 - j)) & 1
                msi = min(ml, 31) * 2 + pbit
                x[nn_in + 3] = stretch[msm[msi] >> 4]
                x[nn_in + 4] = (2 * pbit - 1) * min(ml, 32) * 32
                sel[1] = 1 + min(ml, 15) * 2 + pbit
            else:
                x[nn_in + 3] = 0
                x[nn_in + 4] = 0
                sel[1] = 0
            sel[0] = c0
            sel[2] = c1
            sel[3] = found * 8 + j
            sel[4] = (sn + 2048) >> 7
            sel[5] = c2
            if nset > 6:
                sel[6] = (c1 << 8) | c0
                sel[7] = (c2 << 8) | c0
            if nset > 8:
                sel[8] = (np.int64(classes[s] & np.uint64(63)) << 8) | c0
            if nset > 9:
                sel[9] = (np.int64(min(shape[s, 1], 15)) << 8) | c0
            # --- mixing: the weight sets, then a final mixer per partial byte (and match bucket)
            for m in range(nset):
                row = set_off[m] + sel[m]
                dot = np.int64(0)
                for i in range(n_in):
                    dot += mw[row, i] * x[i]
                dot >>= 16
                dot = min(max(dot, -STRETCH_LIMIT), STRETCH_LIMIT)
                x2[m] = dot
                pk[m] = squash[dot + STRETCH_LIMIT]
            frow = c0
            if by_match and sel[1] > 0:
                frow += 256 if ml < 16 else (512 if ml < 32 else 768)
            dot = np.int64(0)
            for i in range(nset + 1):
                dot += fw[frow, i] * x2[i]
            dot >>= 16
            sf = min(max(dot, -STRETCH_LIMIT), STRETCH_LIMIT)
            pf = squash[sf + STRETCH_LIMIT]
            a1, k1 = _apm_read(apm, c0, sf)
            a2, k2 = _apm_read(apm, 256 + ((c1 << 8) | c0), sf)
            a3, k3 = _apm_read(apm, 256 + 65536 + (h12 | c0), sf)
            if apm4:
                a4, k4 = _apm_read(apm, 256 + 65536 + 65536 + ((np.int64(classes[s]) & 255) << 8 | c0), sf)
                p16 = (pf * 16 + (a1 + a2 + a3 + a4) * apm_w) // (1 + 4 * apm_w)
            else:
                p16 = (pf * 16 + (a1 + a2 + a3) * apm_w) // (1 + 3 * apm_w)
            p16 = min(max(p16, 16), 65535 - 16)
            # --- the bit
            if decode:
                bit = decode_bit(coder, stream, p16)
            else:
                bit = (np.int64(src[pos]) >> (7 - j)) & 1
                encode_bit(coder, stream, bit, p16)
            # --- learning
            target = 65535 * bit
            for k in range(n_ctx):
                sl = idx[k]
                v = slots[sl]
                n = (v >> 32) & 255
                p = v & 0xFFFF
                q = (v >> 16) & 0xFFFF
                p += ((target - p) * rate[n]) >> 16
                q += (target - q) >> fast_shift
                bits4 = (((v >> 48) << 1) | bit) & 15
                slots[sl] = p | (q << 16) | (min(n + 1, limits[k]) << 32) | (((v >> 40) & 255) << 40) | (bits4 << 48)
            for m in range(nset):
                row = set_off[m] + sel[m]
                e12 = (bit << 12) - pk[m]
                if abs(e12) <= skip_err:
                    continue
                err = e12 * mlr
                for i in range(n_in):
                    mw[row, i] += (x[i] * err) >> mix_shift
            err = ((bit << 12) - pf) * fin_lr
            for i in range(nset + 1):
                fw[frow, i] += (x2[i] * err) >> fin_shift
            _apm_learn(apm, k1, bit, apm_rate)
            _apm_learn(apm, k2, bit, apm_rate)
            _apm_learn(apm, k3, bit, apm_rate)
            if apm4:
                _apm_learn(apm, k4, bit, apm_rate)
            _apm_learn(nn_apm, nknot, bit, apm_rate)
            herr = ((bit << 12) - ph) * hid_lr
            for i in range(nh):
                hw[c0, i] += (hq[i] * herr) >> hid_shift
            _apm_learn(nn_apm, nknot2, bit, apm_rate)
            for k in range(n_ctx):
                _apm_learn(cmap, cknot[k], bit, cmap_rate)
            if msi >= 0:
                n = msn[msi]
                msm[msi] += ((target - msm[msi]) * rate[n]) >> 16
                msn[msi] = min(n + 1, 255)
            c0 = (c0 << 1) | bit
        # --- end of byte: histories, words, match pointer
        byte = c0 - 256
        buf[pos] = byte
        h = (h << _B8) | np.uint64(byte)
        hist[s] = h
        cl = ctab[byte]
        if byte == 10:
            lines[s, 1] = lines[s, 0] if lines[s, 0] >= 0 else starts[s]
            lines[s, 0] = pos + 1
            shape[s, 0] = 0
            shape[s, 1] = 0
        elif np.uint64(cl) != (classes[s] & cmask) or shape[s, 1] == 0:
            shape[s, 0] = _hash(shape[s, 0], np.uint64(cl + 1))
            shape[s, 1] = 1
        else:
            shape[s, 1] += np.uint64(1)
        classes[s] = (classes[s] << cbits) | np.uint64(cl)
        low = byte | 32
        if 97 <= low <= 122:
            w0[s] = (w0[s] + np.uint64(low)) * _G2
        elif w0[s] != 0:
            w2[s] = w1[s]
            w1[s] = w0[s]
            w0[s] = np.uint64(0)
        if ml > 0:
            if (expected & 255) == byte and mptr[s] + 1 < size:
                mlen[s] = min(ml + 1, match_max)
                mptr[s] += 1
            else:
                mlen[s] = 0
        if t + 1 >= match_min:
            key = _hash(h & match_mask, np.uint64(11 << 56))
            hm = np.int64(key >> mshift)
            if mlen[s] == 0:
                cand = mt[hm] - 2
                if cand >= 0:
                    r = 0
                    while r < match_verify and r <= t and cand - r >= 0 and buf[cand - r] == buf[pos - r]:
                        r += 1
                    if r >= match_min and cand + 1 < size:
                        mlen[s] = r
                        mptr[s] = cand + 1
            mt[hm] = pos + 2
