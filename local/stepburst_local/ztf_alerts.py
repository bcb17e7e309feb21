"""Generate a night's ZTF public alert tarball: schema-valid AVRO alert packets, gzipped tar.

The real tarballs (https://ztf.uw.edu/alerts/public/) hold one Avro object container file per
alert, named by its candidate id, each with the candidate, up to 30 days of earlier detections
and three gzipped-FITS cutouts. The packets here follow ``jobs/ztf_alert.avsc`` (the fields of
the real schema that the Glue table reads), with values in the real ranges, so a day's
unpacked alerts can be read back with an AVRO reader and queried like the real ones.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro

SCHEMA_FILE = "ztf_alert.avsc"
SCHEMA_VERSION = "3.3"
# A FITS file is made of 2880-byte blocks.
FITS_BLOCK = 2880
UNIX_EPOCH_JULIAN_DAY = 2440587.5


def load_schema(jobs_dir: Path) -> Any:
    return fastavro.parse_schema(json.loads((jobs_dir / SCHEMA_FILE).read_text()))


def _julian_day(day: str) -> float:
    moment = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    return UNIX_EPOCH_JULIAN_DAY + moment.timestamp() / 86_400


def _cutout(name: str, rng: random.Random, payload_bytes: int) -> dict[str, Any]:
    header = f"SIMPLE  =                    T / {name}".ljust(FITS_BLOCK).encode("ascii")
    pixels = rng.randbytes(max(payload_bytes, FITS_BLOCK))
    return {"fileName": name, "stampData": gzip.compress(header + pixels, mtime=0)}


def alert_packet(day: str, index: int, rng: random.Random, cutout_bytes: int) -> dict[str, Any]:
    jd = _julian_day(day) + 0.1 + index * 1e-5
    candid = 1_000_000_000_000_000_000 + int(jd * 1e6) % 10**12 * 1000 + index % 1000
    ra, dec = rng.uniform(0, 360), rng.uniform(-30, 90)
    candidate = {
        "jd": jd,
        "fid": rng.choice((1, 2, 3)),
        "pid": int(jd * 1e4),
        "diffmaglim": rng.uniform(19.0, 21.0),
        "programid": 1,
        "candid": candid,
        "isdiffpos": rng.choice(("t", "f")),
        "nid": int(jd) - 2458000,
        "rcid": rng.randrange(64),
        "field": rng.randrange(200, 900),
        "xpos": rng.uniform(0, 3072),
        "ypos": rng.uniform(0, 3080),
        "ra": ra,
        "dec": dec,
        "magpsf": rng.uniform(14.0, 21.0),
        "sigmapsf": rng.uniform(0.01, 0.3),
        "fwhm": rng.uniform(1.5, 4.0),
        "rb": rng.random(),
        "ssdistnr": None,
        "ssnamenr": None,
        "sgscore1": rng.random(),
        "distpsnr1": rng.uniform(0, 30),
        "ndethist": rng.randrange(1, 50),
        "ncovhist": rng.randrange(50, 500),
        "jdstarthist": jd - rng.uniform(0, 300),
        "jdendhist": jd,
        "rfid": rng.randrange(10**8, 10**9),
        "drb": rng.random(),
        "drbversion": "d6_m7",
    }
    history = [
        {
            "jd": jd - days,
            "fid": candidate["fid"],
            "pid": int((jd - days) * 1e4),
            "diffmaglim": rng.uniform(19.0, 21.0),
            "programid": 1,
            "candid": None if upper_limit else candid - days,
            "isdiffpos": None if upper_limit else "t",
            "ra": None if upper_limit else ra,
            "dec": None if upper_limit else dec,
            "magpsf": None if upper_limit else rng.uniform(14.0, 21.0),
            "sigmapsf": None if upper_limit else rng.uniform(0.01, 0.3),
            "rb": None if upper_limit else rng.random(),
        }
        for days in range(1, rng.randrange(1, 6))
        for upper_limit in (rng.random() < 0.3,)
    ]
    return {
        "schemavsn": SCHEMA_VERSION,
        "publisher": "ZTF (www.ztf.caltech.edu)",
        "objectId": f"ZTF{day[2:4]}{index:07d}",
        "candid": candid,
        "candidate": candidate,
        "prv_candidates": history or None,
        "cutoutScience": _cutout(
            f"candid{candid}_pid{candidate['pid']}_sci.fits.gz", rng, cutout_bytes
        ),
        "cutoutTemplate": _cutout(f"candid{candid}_ref.fits.gz", rng, cutout_bytes),
        "cutoutDifference": _cutout(
            f"candid{candid}_pid{candidate['pid']}_diff.fits.gz", rng, cutout_bytes
        ),
    }


def encode_alert(schema: Any, packet: dict[str, Any]) -> bytes:
    """One alert as the real tarballs hold it: an Avro object container with one record."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [packet])
    return buffer.getvalue()


def write_alert_tarball(
    path: Path,
    jobs_dir: Path,
    day: str,
    count: int,
    *,
    large_member_bytes: int = 0,
    seed: int = 0,
) -> dict[str, int]:
    """Write ``ztf_public_<day>.tar.gz``-style data to ``path``: ``count`` alerts, the first
    with cutouts of ``large_member_bytes`` (a member of that size) when given.

    Returns each member's name and size, for checking what a run unpacked.
    """
    schema = load_schema(jobs_dir)
    rng = random.Random(seed)
    members: dict[str, int] = {}
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for candid, data in _packets(schema, day, count, rng, large_member_bytes):
            name = f"{candid}.avro"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp())
            archive.addfile(info, io.BytesIO(data))
            members[name] = len(data)
    return members


def _packets(
    schema: Any, day: str, count: int, rng: random.Random, large_member_bytes: int
) -> Iterator[tuple[int, bytes]]:
    for index in range(count):
        cutout = large_member_bytes // 3 if index == 0 and large_member_bytes else 600
        packet = alert_packet(day, index, rng, cutout)
        yield int(packet["candid"]), encode_alert(schema, packet)
