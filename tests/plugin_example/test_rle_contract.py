"""The example plugin's own test, as any third-party codec package would write it: lmar's contract suite."""
from lmar.testing import check_codec
from lmar_example_codec import RleCodec


def test_rle_codec_keeps_the_lmar_codec_contract():
    check_codec(RleCodec)
