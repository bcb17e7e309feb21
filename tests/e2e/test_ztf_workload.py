"""The ZTF daily alerts workload end to end on the local engine.

A generated night's tarball (thousands of schema-valid AVRO alert packets and one member of
tens of MB) is served from 127.0.0.1 with Range support; the connection drops once mid-way.
The job unpacks it into S3 on its ECS worker: every member exactly once, byte for byte, the
download resumed rather than restarted, and an alert reads back with an AVRO reader.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest
from tests.e2e.cli_runner import cli_output, finished_run

from stepburst_local import LocalEngine
from stepburst_local.http_files import FileServer
from stepburst_local.ztf_alerts import load_schema, write_alert_tarball

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DAY = "20260308"
# The sizes the workload names; smaller through the environment on a slow machine.
MEMBERS = int(os.environ.get("STEPBURST_ZTF_MEMBERS", "2000"))
LARGE_MEMBER_BYTES = int(os.environ.get("STEPBURST_ZTF_LARGE_MB", "24")) * 1024 * 1024


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        yield running


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    directory = tmp_path_factory.mktemp("alerts")
    tarball = directory / f"ztf_public_{DAY}.tar.gz"
    members = write_alert_tarball(
        tarball, ROOT / "jobs", DAY, MEMBERS, large_member_bytes=LARGE_MEMBER_BYTES
    )
    return tarball, members


def test_a_nights_tarball_is_unpacked_once_with_a_resumed_download(
    engine: LocalEngine, night: tuple[Path, dict[str, int]]
) -> None:
    tarball, members = night
    with FileServer(tarball.parent) as server:
        server.drop_next_response_after(tarball.stat().st_size // 3)
        started = cli_output(
            engine,
            "start",
            "ztf-alerts-daily",
            "--date",
            DAY,
            "--param",
            f"URL_TEMPLATE={server.url}/ztf_public_{{date}}.tar.gz",
            "--apply",
            "--json",
        )
        run = finished_run(engine, str(json.loads(started)["execution_arn"]))
        requests = server.requests
    assert run["status"] == "SUCCEEDED"
    # One download, resumed once from where the connection dropped.
    assert len(requests) == 2
    assert requests[1][1] > 0
    (item,) = engine.ledger().iter_items(run["run_id"])
    assert item["status"] == "SUCCEEDED"
    assert item["result"]["members"] == len(members)
    assert item["result"]["bytes"] == sum(members.values())
    assert item["result"]["resumed"] == 1

    s3 = engine.client("s3")
    bucket = str(engine.outputs["OutputBucketName"])
    prefix = str(item["result"]["prefix"])
    stored: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stored.update({entry["Key"][len(prefix) :]: entry["Size"] for entry in page["Contents"]})
    # Every member once; the run's own summary sits beside them (a name Athena skips).
    assert {key: size for key, size in stored.items() if not key.startswith("_")} == members

    # Athena can read the night at once: the table over the alerts has its partition.
    glue = engine.client("glue")
    table = glue.get_table(DatabaseName="stepburst", Name="ztf_alerts")["Table"]
    serde = table["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
    shipped_schema = json.loads((ROOT / "jobs" / "ztf_alert.avsc").read_text())
    assert json.loads(table["Parameters"]["avro.schema.literal"]) == shipped_schema
    columns = {c["Name"].lower(): c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert {"objectid", "candid", "candidate", "prv_candidates"} <= set(columns)
    assert columns["candidate"].startswith("struct<")
    assert [key["Name"] for key in table["PartitionKeys"]] == ["date"]
    partition = glue.get_partition(
        DatabaseName="stepburst", TableName="ztf_alerts", PartitionValues=[DAY]
    )["Partition"]
    assert partition["StorageDescriptor"]["Location"] == f"s3://{bucket}/{prefix}"

    # Byte for byte: the largest member, and a small one read back as an alert packet.
    with tarfile.open(tarball) as archive:
        largest = max(members, key=members.__getitem__)
        source = archive.extractfile(largest)
        assert source is not None
        expected = source.read()
    got = s3.get_object(Bucket=bucket, Key=prefix + largest)["Body"].read()
    assert got == expected
    small = min(members, key=members.__getitem__)
    body = s3.get_object(Bucket=bucket, Key=prefix + small)["Body"].read()
    (alert,) = list(fastavro.reader(io.BytesIO(body), reader_schema=load_schema(ROOT / "jobs")))
    assert isinstance(alert, dict)
    assert f"{alert['candid']}.avro" == small
    assert alert["candidate"]["candid"] == alert["candid"]
    assert 0 <= alert["candidate"]["ra"] < 360
    assert alert["cutoutDifference"]["stampData"][:2] == b"\x1f\x8b"  # gzipped FITS
