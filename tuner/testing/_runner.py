"""Running the checks on a plugin class or instance: results, or a :class:`ContractError`."""

from __future__ import annotations

import inspect
import time
from typing import Any

import torch

from tuner._plugin_api import plugin_kind
from tuner.testing._base import FAIL, PASS, SKIP, Check, CheckResult, ContractError, Fail, Skip, Subject
from tuner.testing._batch import BATCH_OPTIMIZER_CHECKS, BATCH_PENALTY_CHECKS
from tuner.testing._common import COMMON_CHECKS
from tuner.testing._optimizer import OPTIMIZER_ONLY_CHECKS
from tuner.testing._penalty import PENALTY_ONLY_CHECKS

__all__ = ["PENALTY_CHECKS", "OPTIMIZER_CHECKS", "run_checks", "check_penalty", "check_optimizer", "check_plugin"]

_PENALTY: list[Check] = COMMON_CHECKS + PENALTY_ONLY_CHECKS + BATCH_PENALTY_CHECKS
_OPTIMIZER: list[Check] = COMMON_CHECKS + OPTIMIZER_ONLY_CHECKS + BATCH_OPTIMIZER_CHECKS

PENALTY_CHECKS: tuple[str, ...] = tuple(name for name, _, _ in _PENALTY)
"""The names of the penalty checks, in the order they run."""
OPTIMIZER_CHECKS: tuple[str, ...] = tuple(name for name, _, _ in _OPTIMIZER)
"""The names of the optimizer checks, in the order they run."""


def run_checks(obj: Any, *, kind: str | None = None, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run every contract check on a plugin class or instance; never raises for a failed check.

    ``kind`` (``"penalty"`` or ``"optimizer"``) says which contract to hold it to; by default
    it follows the class. ``name`` is the entry-point name the plugin's ``name`` must equal.
    A check whose prerequisite failed is skipped, with the reason. The checks run with one
    torch thread (restored afterwards): their tensors are tiny.
    """
    return _run(obj, kind=kind, name=name, seed=seed)


def _run(obj: Any, *, kind: str | None, name: str | None, seed: int,
         only: tuple[str, ...] | None = None) -> list[CheckResult]:
    """:func:`run_checks`; ``only`` runs those checks alone, at the defaults only (a quick subset)."""
    kind = kind or plugin_kind(obj)
    if kind is None:
        cls = obj if inspect.isclass(obj) else type(obj)
        return [CheckResult("interface", FAIL, f"{cls.__module__}.{cls.__qualname__} is not a subclass of "
                                               "tuner.Penalty or tuner.Optimizer")]
    if kind not in ("penalty", "optimizer"):
        raise ValueError(f"The 'kind' parameter of run_checks must be 'penalty' or 'optimizer'; got {kind!r} instead.")
    subject = Subject(obj, kind, name, seed, quick=only is not None)
    table = _PENALTY if kind == "penalty" else _OPTIMIZER
    if only is not None:
        table = [row for row in table if row[0] in only]
    results: dict[str, CheckResult] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the toy tensors are tiny: threads only add contention
    try:
        with torch.random.fork_rng(devices=[]):  # a plugin may draw from torch's global generator
            _run_all(subject, table, results)
    finally:
        torch.set_num_threads(threads)
    return list(results.values())


def _run_all(subject: Subject, table: list[Check], results: dict[str, CheckResult]) -> None:
    for check, fn, needs in table:
        blocked = [n for n in needs if n in results and not results[n].passed]
        if blocked:
            results[check] = CheckResult(check, SKIP, f"needs the '{blocked[0]}' check to pass")
            continue
        started = time.perf_counter()
        before = _global_state()
        try:
            note = fn(subject)
            status = PASS
        except Fail as exc:
            status, note = FAIL, str(exc)
        except Skip as exc:
            status, note = SKIP, str(exc)
        except Exception as exc:  # a bug in the plugin that a check did not anticipate
            status, note = FAIL, f"unexpected {type(exc).__name__}: {exc}"
        changed = _restore(before)
        if changed and status != FAIL:
            status, note = FAIL, (f"the plugin changed torch's global state ({changed}), which every later fit in the "
                                  "process would inherit; a plugin must leave it as it found it")
        results[check] = CheckResult(check, status, note, time.perf_counter() - started)


def _global_state() -> tuple[torch.dtype, int, bool]:
    """What a plugin must not change for the rest of the process: the default dtype, the
    intra-op threads (the trainer sets them per fit) and autograd's mode."""
    return torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled()


def _restore(before: tuple[torch.dtype, int, bool]) -> str:
    """Put the global state back as ``before``; say what had changed ('' when nothing)."""
    dtype, threads, grad = _global_state()
    changed = []
    if dtype != before[0]:
        changed.append(f"torch.set_default_dtype({dtype})")
        torch.set_default_dtype(before[0])
    if threads != before[1]:
        changed.append(f"torch.set_num_threads({threads})")
        torch.set_num_threads(before[1])
    if grad != before[2]:
        changed.append(f"torch.set_grad_enabled({grad})")
        torch.set_grad_enabled(before[2])
    return ", ".join(changed)


def _raise_on_failure(obj: Any, kind: str, results: list[CheckResult], name: str | None) -> None:
    failed = [r for r in results if r.failed]
    if not failed:
        return
    subject = Subject(obj, kind, name, 0)
    raise ContractError(kind, subject.label, failed[0].check, failed[0].reason, [r.check for r in failed[1:]])


def check_penalty(penalty: Any, *, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the penalty checks on a :class:`tuner.Penalty` class or instance.

    Raises :class:`ContractError` naming the plugin and the first failed check; returns the
    results (passed and skipped checks) otherwise.
    """
    results = run_checks(penalty, kind="penalty", name=name, seed=seed)
    _raise_on_failure(penalty, "penalty", results, name)
    return results


def check_optimizer(optimizer: Any, *, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the optimizer checks on a :class:`tuner.Optimizer` class or instance (see :func:`check_penalty`)."""
    results = run_checks(optimizer, kind="optimizer", name=name, seed=seed)
    _raise_on_failure(optimizer, "optimizer", results, name)
    return results


def check_plugin(obj: Any, *, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the checks of whichever contract ``obj`` (a class or instance) claims to follow."""
    kind = plugin_kind(obj)
    if kind is None:
        cls = obj if inspect.isclass(obj) else type(obj)
        raise ContractError("plugin", f"{cls.__module__}.{cls.__qualname__}", "interface",
                            "it is not a subclass (or instance) of tuner.Penalty or tuner.Optimizer")
    return check_penalty(obj, name=name, seed=seed) if kind == "penalty" else check_optimizer(obj, name=name, seed=seed)
