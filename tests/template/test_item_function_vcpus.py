"""The item function's memory buys whole vCPUs, each of which the item keeps busy.

Lambda gives a function the equivalent of one vCPU per 1,769 MB
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), and a JSONL item on
Lambda runs one process per whole vCPU of its memory: memory between two multiples would be
paid for and left idle.
"""

from __future__ import annotations

from typing import Any

import pytest

from stepburst.multicore import LAMBDA_MB_PER_VCPU, lambda_processes

pytestmark = pytest.mark.template


def test_the_item_function_memory_is_whole_vcpus_its_processes_use(
    template: dict[str, Any],
) -> None:
    memory = int(template["Resources"]["ProcessItemsFunction"]["Properties"]["MemorySize"])

    assert lambda_processes(memory) * LAMBDA_MB_PER_VCPU == memory
