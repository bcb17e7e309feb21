"""Job files: the shipped schema, the example jobs, and errors that name file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepburst.errors import JobSpecError, UnknownJobError
from stepburst.jobs import JobCatalog, load_job_file, parse_job
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
    assert job.params_open is False
    assert job.split.jsonl is not None
    assert job.split.jsonl.max_reject_percent == 50


def test_shipped_jsonl_jobs_take_plain_and_gzip_uploads() -> None:
    catalog = JobCatalog.from_directory(REPO / "jobs")
    for key in ("incoming/yelp/a.jsonl", "incoming/yelp/a.jsonl.gz"):
        assert catalog.for_upload(key).name == "yelp-business-scores"  # type: ignore[union-attr]
    assert catalog.for_upload("incoming/yelp/a.gz") is None


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name": "Bad Name"}, "name", "does not match"),
        ({"split": {}}, "split", "non-empty"),
        ({"split": {"jsonl": {}, "items": {}}}, "split", "too many properties"),
        ({"split": {"jsonl": {"range_mb": 0}}}, "split.jsonl.range_mb", "minimum"),
        (
            {"split": {"jsonl": {"max_reject_percent": 101}}},
            "split.jsonl.max_reject_percent",
            "maximum",
        ),
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


def test_two_files_of_one_job_are_both_named(tmp_path: Path) -> None:
    (tmp_path / "scores.yaml").write_text(json.dumps(VALID), encoding="utf-8")
    (tmp_path / "scores.yml").write_text(json.dumps(VALID), encoding="utf-8")
    with pytest.raises(JobSpecError) as raised:
        JobCatalog.from_directory(tmp_path)
    assert str(raised.value) == (
        "scores.yml: name: job 'scores' is defined twice, in scores.yaml and scores.yml"
    )


def scheduled(expression: str) -> dict[str, object]:
    return {
        **VALID,
        "split": {"date": {}},
        "run": {"function": "archives:unpack_tarball"},
        "triggers": {"schedule": {"expression": expression}},
    }


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 6 * * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(*/5 8-17 ? * MON-FRI *)",
        "cron(10-50/10 8,12,18 ? * 2-6 2025-2030)",
        "cron(15 10 L * ? *)",
        "cron(0 9 15W * ? *)",
        "cron(0 8 ? * 6L *)",
        "cron(0 9 ? * FRI#2 *)",
        "cron(0 12 1 JAN,jul ? *)",
        "cron(0 0 ? JAN-MAR/2 SUN *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "at(2030-01-31T23:59:00)",
    ],
)
def test_valid_schedule_expressions_are_taken(expression: str) -> None:
    job = parse_job(scheduled(expression), "nightly.yaml")
    assert job.triggers.schedule is not None
    assert job.triggers.schedule.expression == expression


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("cron(99 99 * * ? *)", "minutes field '99': 99 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours field '24': 24 is outside 0-23"),
        ("cron(hello)", "6 fields"),
        ("cron(0 6 * * ? * *)", "6 fields"),
        ("cron(0 6 * * * *)", "one of day-of-month '*' and day-of-week '*' must be '?'"),
        ("cron(0 6 1 * MON *)", "must be '?'"),
        ("cron(0 6 ? * ? *)", "both '?'"),
        ("cron(0 ? * * ? *)", "hours field '?'"),
        ("cron(0 6 32 * ? *)", "day-of-month field '32'"),
        ("cron(0 6 0 * ? *)", "0 is outside 1-31"),
        ("cron(0 6 * 13 ? *)", "month field '13'"),
        ("cron(0 6 * FOO ? *)", "'FOO' is not a number or a name (JAN-DEC)"),
        ("cron(0 6 ? * 8 *)", "day-of-week field '8'"),
        ("cron(0 6 ? * MON-FRI/2 *)", "day-of-week field 'MON-FRI/2': no '/' steps"),
        ("cron(0 6 ? * 2#6 *)", "day-of-week field '2#6'"),
        ("cron(0 6 ? * 3#1,6#3 *)", "stands alone"),
        ("cron(0 6 L,15 * ? *)", "stands alone"),
        ("cron(0 6 32W * ? *)", "day-of-month field '32W'"),
        ("cron(0 6 5L * ? *)", "day-of-month field '5L'"),
        ("cron(0 6 * * ? 1969)", "year field '1969': 1969 is outside 1970-2199"),
        ("cron(*/0 6 * * ? *)", "minutes field '*/0': the step"),
        ("cron(30-10 6 * * ? *)", "minutes field '30-10': the range runs backwards"),
        ("cron(0 6 1,,2 * ? *)", "day-of-month field '1,,2': an empty list element"),
        ("cron(0 6W * * ? *)", "hours field '6W'"),
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "plural"),
        ("rate(0 hours)", "a positive whole number"),
        ("rate(2 weeks)", "'weeks'"),
        ("rate(5minutes)", "a value and a unit"),
        ("at(2030-02-30T00:00:00)", "not a real date and time"),
        ("at(2030-02-03 00:00)", "yyyy-mm-ddThh:mm:ss"),
        ("daily", "does not match"),
    ],
)
def test_invalid_schedule_expressions_name_the_field_and_the_problem(
    expression: str, words: str
) -> None:
    with pytest.raises(JobSpecError) as raised:
        parse_job(scheduled(expression), "nightly.yaml")
    assert raised.value.source == "nightly.yaml"
    assert raised.value.field == "triggers.schedule.expression"
    assert words in raised.value.problem


def test_value_errors_read_without_pydantic_prefix() -> None:
    document = scheduled("rate(1 day)")
    document["triggers"] = {"schedule": {"expression": "rate(1 day)", "timezone": "Mars/Base"}}
    with pytest.raises(JobSpecError) as raised:
        parse_job(document, "nightly.yaml")
    assert raised.value.problem == "unknown time zone 'Mars/Base'"
