"""What each compiled scheme's mixer looks like: its table layout and learning rates, one frozen :class:`Layout`.

Why a value and not module constants: the layout is part of the bitstream, so it must not change under a
running codec; a tuning tool (``tools/lm/tune_cm2.py``) tries other rates by building its own layout
with :func:`dataclasses.replace` and handing it to the block coder, never by patching this module. The
compiled step (:mod:`.mixer_step`) reads the rates from :meth:`Layout.opts` at run time and the table
sizes from the shapes :mod:`.mixer_tables` builds, so one compiled function serves every scheme.

Every scheme's layout is frozen once members exist (``tests/data/lm_v*_payload.bin`` pin them): a new
layout needs a new scheme name.

* ``cm2``: six weight sets, a final mixer per partial byte.
* ``cm3``: two more weight sets (previous byte, byte before last, each with the partial byte); a final
  mixer per partial byte and match-length bucket; a faster weight rate.
* ``cm4``: contexts on the *shape* of the text rather than its bytes, because that is what predicts the
  parts of URLs, numbers and verse the byte contexts have never seen: every byte has a class
  (:func:`class_table`), and cm4 adds five hashed contexts (:data:`EXTRA_CM4`), two weight sets (classes x
  partial byte, class-run length x partial byte), a fourth APM by classes, 32-bit weights and skipped
  small updates. ``cm5`` and ``cm6`` use cm4's layout, started from a mixer prior (:mod:`.prior`).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

#: Hashed contexts every scheme has (o2 o3 o4 o5 o6 o8 word word-bigram sparse above trigram) after the two
#: direct ones (o0, o1); a layout may add more (:attr:`Layout.extra`).
N_HASHED = 11
#: Mixer inputs per context (count-adaptive, fast, and history-mapped probabilities).
PER_CTX = 3
#: Weight-set sizes: partial byte, match state, previous byte, seen-orders x bit position, network
#: confidence, byte before last; cm3 adds previous byte x partial byte, byte before last x partial byte.
SETS = (256, 33, 256, 56, 32, 256)
SETS_CM3 = SETS + (65536, 65536)

#: Kinds of extra hashed context (cm4). A three-digit kind 1CB is the classes of the last C bytes (at
#: most 16) with the last B bytes themselves: the shape of what came before (a number of five digits,
#: then ``_``, in a URL), which tells what comes next where the bytes themselves were never seen.
KIND_CLASSES_C1 = 3   # the classes of the last 8 bytes with the previous byte
KIND_SHAPE = 6        # the line so far as a sequence of class runs, with the current run's length
KIND_COLUMN = 9       # the column with the previous byte (verse, tables, fixed-width lines)
#: Bits of one byte's class (see :func:`class_table`).
CLASS_BITS = 4
#: cm4 = cm3 plus five class/shape contexts, weight sets by (classes of the last 1.5 bytes x partial
#: byte) and (class run length x partial byte), a fourth APM, 32-bit weights, skipped small updates.
#: Chosen trial by trial on the whole text set (tools/lm/README.md): 485,309 -> 475,722 payload bytes.
EXTRA_CM4: tuple[int, ...] = (KIND_CLASSES_C1, 221, 310, KIND_SHAPE, KIND_COLUMN)
SETS_CM4 = SETS_CM3 + (16384, 4096)

#: Indices of :meth:`Layout.opts`, the integer vector the compiled step reads; the kinds of the extra
#: hashed contexts follow from :data:`N_OPTS` on.
(OPT_MIX_LR, OPT_FLAGS, OPT_SKIP_ERR, OPT_MIX_SHIFT, OPT_MIX_BOOST, OPT_FIN_LR, OPT_FIN_SHIFT, OPT_APM_RATE,
 OPT_APM_W, OPT_CMAP_RATE, OPT_FAST_SHIFT, OPT_HID_LR, OPT_HID_SHIFT, OPT_MATCH_MIN, OPT_MATCH_VERIFY,
 OPT_MATCH_MAX) = range(16)
N_OPTS = 16


@dataclass(frozen=True)
class Layout:
    """One scheme's mixer: table shapes and rates; part of the bitstream, fixed per scheme name.

    The rates were chosen by coordinate search on the text corpus (tools/lm/README.md).
    """

    sets: tuple[int, ...]
    #: Final-mixer rows: 256 (one per partial byte) or 1024 (x match-length bucket: none, <16, <32, more).
    final_rows: int
    #: Weight-set mixers learn ``err * mix_lr >> mix_shift`` per unit input.
    mix_lr: int
    #: Hashed contexts after the eleven every scheme has, by kind (``KIND_*``, or 1CB for classes+bytes).
    extra: tuple[int, ...] = ()
    #: Bit 0: a fourth APM keyed by the classes of the last two bytes; bit 1: 32-bit mixer weights and
    #: inputs (the same sums, products are taken in 64 bits, but the weights take half the memory
    #: traffic: the mixer runs ~17 % faster).
    flags: int = 0
    #: Weight sets whose own error is at most this (of 4096) skip their update: a confident right guess
    #: teaches little, and skipping it saves a pass over the weights.
    skip_err: int = 0
    mix_shift: int = 14
    #: Extra weight rate in the first steps: ``mix_lr * mix_boost / (1 + t / 64)``.
    mix_boost: int = 8
    fin_lr: int = 1         # final mixer
    fin_shift: int = 13
    apm_rate: int = 6       # APMs move 1/64 of the way to each bit
    #: Final P: (mixer + apm_w * each APM) / (1 + apm_w * number of APMs).
    apm_w: int = 3
    cmap_rate: int = 7      # indirect count/history maps
    fast_shift: int = 6     # fast slot probability: 1/64 per bit
    hid_lr: int = 1         # hidden-state regression
    hid_shift: int = 9
    #: Count caps of the direct and hashed contexts (a slot's rate is 1/(count + 1.5)).
    lim_direct: int = 255
    lim_hashed: int = 255
    #: The match model: shortest match followed, bytes verified when a candidate is found, longest length.
    match_min: int = 6
    match_verify: int = 32
    match_max: int = 65535

    def opts(self) -> np.ndarray:
        """The integers the compiled step reads (indices ``OPT_*``), then the extra contexts' kinds."""
        head = (self.mix_lr, self.flags, self.skip_err, self.mix_shift, self.mix_boost, self.fin_lr,
                self.fin_shift, self.apm_rate, self.apm_w, self.cmap_rate, self.fast_shift, self.hid_lr,
                self.hid_shift, self.match_min, self.match_verify, self.match_max)
        assert len(head) == N_OPTS
        return np.array([*head, *self.extra], dtype=np.int64)


_CM4 = Layout(SETS_CM4, 1024, 6, EXTRA_CM4, flags=3, skip_err=120)

#: Every compiled scheme's layout (read only). cm5 and cm6 are cm4's tables started from a mixer prior
#: (:data:`.prior.PRIOR_SCHEMES`).
SCHEME_LAYOUTS = MappingProxyType({
    "cm2": Layout(SETS, 256, 5),
    "cm3": Layout(SETS_CM3, 1024, 6),
    "cm4": _CM4,
    "cm5": _CM4,
    "cm6": _CM4,
})


def layout(scheme: str) -> Layout:
    """The table layout of ``scheme``."""
    try:
        return SCHEME_LAYOUTS[scheme]
    except KeyError:
        raise ValueError(f"no layout for scheme {scheme!r}") from None


def class_table() -> np.ndarray:
    """cm4's class of each byte value: letter case, digits, spaces, and the punctuation that shapes text,
    code and URLs, each its own class (the shape of a line is its sequence of classes)."""
    t = np.zeros(256, dtype=np.int64)  # 0: other printable ASCII
    # Control characters first, so that newline (one of them) then gets its own class.
    groups = {14: [*range(32), 127], 1: range(97, 123), 2: range(65, 91), 3: range(48, 58), 4: b" ", 5: b"\n",
              6: b".", 7: b",", 8: b"/", 9: b"-_", 10: b":;", 11: b"=&?", 12: b"\"'`", 13: b"()[]{}<>",
              15: range(128, 256)}
    for cls, members in groups.items():
        t[list(members)] = cls
    return t
