"""The objects a handler or the worker builds once per process, at cold start.

Building them validates the environment and every job file, so a misconfigured function
fails on its first invocation with the variable or file and field named.
"""

from __future__ import annotations

from functools import cache

from stepburst import cold_start
from stepburst.cold_start import once_per_process
from stepburst.combining import Combiner
from stepburst.finalizing import Finalizer
from stepburst.jobs import JobCatalog
from stepburst.ledger import Ledger
from stepburst.planning import Planner
from stepburst.reconciling import RunReconciler
from stepburst.recovery import UnitRecovery
from stepburst.settings import settings
from stepburst.units import UnitRunner


@once_per_process
@cache
def catalog() -> JobCatalog:
    return JobCatalog.from_directory(settings().jobs_dir)


@once_per_process
@cache
def ledger() -> Ledger:
    config = settings()
    return Ledger(config.ledger_table, config.retention_days)


@once_per_process
@cache
def planner() -> Planner:
    return Planner(settings(), catalog(), ledger())


@once_per_process
@cache
def unit_runner() -> UnitRunner:
    return UnitRunner(settings(), ledger())


@once_per_process
@cache
def unit_recovery() -> UnitRecovery:
    return UnitRecovery(catalog(), ledger())


@once_per_process
@cache
def reconciler() -> RunReconciler:
    return RunReconciler(planner(), ledger())


@once_per_process
@cache
def finalizer() -> Finalizer:
    return Finalizer(settings(), catalog(), ledger())


@once_per_process
@cache
def combiner() -> Combiner:
    return Combiner(settings(), catalog(), ledger(), finalizer().item_digests)


def reset() -> None:
    """Forget everything built from the environment (the local engine and tests use this):
    these objects and every other cold-start cache, e.g. the settings a handler read alone."""
    cold_start.reset()
