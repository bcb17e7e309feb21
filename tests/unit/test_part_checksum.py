"""The checksum every upload carries is S3's CRC32C, in the form its header takes."""

from __future__ import annotations

import base64

import pytest

from stepburst.storage import CHECKSUM_ALGORITHM, part_checksum

pytestmark = pytest.mark.unit


def test_the_checksum_is_crc32c_big_endian_in_base64() -> None:
    # The published check value of CRC-32C (Castagnoli, as iSCSI uses) over the nine digits.
    assert CHECKSUM_ALGORITHM == "CRC32C"
    assert base64.b64decode(part_checksum(b"123456789")) == bytes.fromhex("e3069283")
    assert base64.b64decode(part_checksum(b"")) == bytes(4)
