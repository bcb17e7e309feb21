"""What AWS lets a job's container be: Fargate sizes, architectures, instance families.

The job model checks a job's ``compute`` against these at validation, so a combination AWS
would refuse (or could never place) fails when the job file is read, naming the field, instead
of when a run starts.
"""

from __future__ import annotations

import re

# Fargate's task CPU units and, for each, the memory sizes (MiB) it can have ("Task CPU and
# memory", Amazon ECS developer guide):
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

# Fargate's ephemeral storage, in GiB: 20 come free, a task may ask for 21 to 200.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-storage.html
FARGATE_STORAGE_GB = (21, 200)

# Instance types Batch picks itself: "optimal" and "default_x86_64" are x86_64 families,
# "default_arm64" Graviton ones.
# https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html
_CHOSEN_BY_BATCH = {"optimal": "x86_64", "default_x86_64": "x86_64", "default_arm64": "arm64"}
# Graviton families carry a "g" after the generation (m7g, c6gn, r8gd, im4gn, is4gen, x2gd,
# g5g) or are the first one (a1); everything else EC2 offers to Batch is x86_64.
_GRAVITON_FAMILY = re.compile(r"^(a1|[a-z]+\d+g[a-z]*|is4gen)$")
INSTANCE_TYPE_PATTERN = r"^([a-z][a-z0-9-]*)(\.[a-z0-9]+)?$"


class ComputeFieldError(ValueError):
    """A compute combination AWS refuses; ``field`` is its path under ``compute``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(problem)


def fargate_memory_problem(cpu: int, memory_mb: int) -> str | None:
    """Why Fargate has no task of this size, or None if it has."""
    sizes = FARGATE_MEMORY.get(cpu)
    if sizes is None:
        return f"Fargate has no task with {cpu} CPU units (it has {sorted(FARGATE_MEMORY)})"
    if memory_mb in sizes:
        return None
    shown = (
        ", ".join(str(size) for size in sizes)
        if len(sizes) <= 7
        else (f"{sizes[0]} to {sizes[-1]} in steps of {sizes[1] - sizes[0]}")
    )
    return f"Fargate runs {cpu} CPU units with {shown} MiB, not {memory_mb}"


def instance_architecture(instance_type: str) -> str:
    """x86_64 or arm64: the CPU of an instance type ("m7g.large") or family ("c6i")."""
    if instance_type in _CHOSEN_BY_BATCH:
        return _CHOSEN_BY_BATCH[instance_type]
    family = instance_type.split(".", 1)[0]
    return "arm64" if _GRAVITON_FAMILY.match(family) else "x86_64"
