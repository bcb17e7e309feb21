"""The job JSON Schema, generated from the models and shipped next to them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from stepburst.jobs.model import Job

SCHEMA_PATH = Path(__file__).with_name("job.schema.json")
SCHEMA_ID = "https://stepburst.dev/schemas/job.schema.json"


def generate_schema() -> dict[str, Any]:
    schema = Job.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


@cache
def shipped_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def main() -> None:
    SCHEMA_PATH.write_text(json.dumps(generate_schema(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
