"""Job files: the shipped schema, the example jobs, and errors that name file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepburst.errors import JobSpecError, UnknownJobError
from stepburst.jobs import JobCatalog, check_for_stack, load_job_file, parse_job
from stepburst.jobs.schema import SCHEMA_PATH, generate_schema

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

VALID = {
    "name": "scores",
    "triggers": {"s3": [{"prefix": "in/", "suffix": ".jsonl"}]},
    "split": {"jsonl": {"range_mb": 8}},
    "run": {"function": "yelp_scores:add_review_score"},
    "output": {"prefix": "out/"},
}


def test_shipped_schema_is_generated_from_the_model() -> None:
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == generate_schema(), "run: python -m stepburst.jobs.schema"


def test_every_shipped_job_is_valid() -> None:
    catalog = JobCatalog.from_directory(REPO / "jobs")
    assert {job.name for job in catalog} >= {"yelp-business-scores", "yelp-archive-scores"}


def test_defaults_fill_in() -> None:
    job = parse_job(VALID, "scores.yaml")
    assert job.compute.platform == "auto"
    assert job.retries == 2
    assert job.triggers.manual is True


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name": "Bad Name"}, "name", "does not match"),
        ({"split": {}}, "split", "non-empty"),
        ({"split": {"jsonl": {}, "items": {}}}, "split", "too many properties"),
        ({"split": {"jsonl": {"range_mb": 0}}}, "split.jsonl.range_mb", "minimum"),
        ({"run": {"function": "no_colon"}}, "run.function", "does not match"),
        ({"compute": {"platform": "ec2"}}, "compute.platform", "is not one of"),
        ({"compute": {"cpu": 1000}}, "compute.cpu", "is not one of"),
        ({"tolerated_failure_percent": 150}, "tolerated_failure_percent", "maximum"),
        ({"output": {"prefix": "no-slash"}}, "output.prefix", "does not match"),
        ({"triggers": {"s3": [{"suffix": ".x"}]}}, "triggers.s3[0]", "'prefix' is a required"),
        ({"retries": "three"}, "retries", "is not of type 'integer'"),
        ({"colour": "blue"}, "(top level)", "Additional properties"),
    ],
)
def test_invalid_job_names_field(change: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(JobSpecError) as raised:
        parse_job({**VALID, **change}, "scores.yaml")
    assert raised.value.source == "scores.yaml"
    assert raised.value.field == field
    assert words in raised.value.problem


def test_missing_required_field_is_named() -> None:
    document = {k: v for k, v in VALID.items() if k != "run"}
    with pytest.raises(JobSpecError, match=r"scores\.yaml: \(top level\): 'run' is a required"):
        parse_job(document, "scores.yaml")


def test_file_name_must_match_job_name(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(json.dumps(VALID), encoding="utf-8")
    with pytest.raises(JobSpecError, match=r"other\.yaml: name: must match the file name"):
        load_job_file(path)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "scores.yaml"
    path.write_text("name: scores\nsplit: [unclosed\n", encoding="utf-8")
    with pytest.raises(JobSpecError, match=r"scores\.yaml: line \d+: not valid YAML"):
        load_job_file(path)


def test_catalog_lookup_and_upload_matching() -> None:
    longer = {**VALID, "name": "deeper", "triggers": {"s3": [{"prefix": "in/deep/"}]}}
    catalog = JobCatalog([parse_job(VALID, "a"), parse_job(longer, "b")])
    assert catalog.for_upload("in/x.jsonl").name == "scores"  # type: ignore[union-attr]
    assert catalog.for_upload("in/deep/x.jsonl").name == "deeper"  # type: ignore[union-attr]
    assert catalog.for_upload("in/x.csv") is None
    assert catalog.for_upload("elsewhere/x.jsonl") is None
    with pytest.raises(UnknownJobError, match="known: deeper, scores"):
        catalog.get("nope")


def test_duplicate_job_names_are_refused() -> None:
    with pytest.raises(JobSpecError, match="defined twice"):
        JobCatalog([parse_job(VALID, "a"), parse_job(VALID, "b")])


def test_a_job_for_other_workers_than_the_stack_has_is_refused() -> None:
    arm = parse_job({**VALID, "compute": {"architecture": "arm64"}}, "scores.yaml")
    check_for_stack(arm, "ARM64")
    check_for_stack(arm, None)
    with pytest.raises(JobSpecError, match=r"scores\.yaml: compute\.architecture: .*x86_64"):
        check_for_stack(arm, "X86_64")
