"""One content hash of the job files, so the Lambda layer and the worker image are known to
carry the same jobs.

``make image`` / ``stepburst image`` bake the digest of ``jobs/`` into the worker image (its
``STEPBURST_JOBS_DIGEST`` and a label) and deploy the stack with the same value as the
``WorkerJobsDigest`` parameter, which the Plan function receives. Plan hashes the jobs layer it
runs with and refuses to plan when the two differ: a unit on ECS or Batch would otherwise run
other job code than the plan was made with.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from stepburst.cold_start import once_per_process
from stepburst.errors import StepburstError

# What a job consists of: its spec, the modules it names and what they install. The layer also
# holds the packages installed from jobs/requirements.txt; their files are not the jobs'.
JOB_SUFFIXES = (".yaml", ".yml", ".py")
JOB_FILES = ("requirements.txt",)


class JobsMismatchError(StepburstError):
    """The worker image was built from other job files than the jobs layer holds."""


def _installed(directory: Path) -> set[str]:
    """Top-level files that an installed distribution put there (listed in its RECORD)."""
    names: set[str] = set()
    for record in directory.glob("*.dist-info/RECORD"):
        for line in record.read_text(encoding="utf-8").splitlines():
            path = line.split(",", 1)[0]
            if "/" not in path:
                names.add(path)
    return names


def jobs_digest(directory: Path) -> str:
    """sha256 over the job files (top-level specs, modules and requirements.txt) by name."""
    installed = _installed(directory)
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name in installed:
            continue
        if path.suffix in JOB_SUFFIXES or path.name in JOB_FILES:
            digest.update(path.name.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@once_per_process
@cache
def layer_digest(directory: Path) -> str:
    """The digest of the jobs this process runs with: the layer does not change while warm."""
    return jobs_digest(directory)


def check_worker_jobs(jobs_dir: Path, worker_digest: str | None) -> None:
    """Fail when the worker image's jobs are not the layer's; no digest given skips it."""
    if not worker_digest:
        return
    ours = layer_digest(jobs_dir)
    if ours != worker_digest:
        raise JobsMismatchError(
            f"the worker image was built from other job files (jobs digest "
            f"{worker_digest[:12]}) than the jobs layer holds ({ours[:12]}): build, push and "
            "deploy them together with `make image` (stepburst image)"
        )
