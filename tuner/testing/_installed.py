"""The checks of installed plugins (what the registry loads from entry points), in full or quick."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tuner._registry import Registry, optimizers, penalties
from tuner.errors import PluginError
from tuner.testing._base import FAIL, PASS, CheckResult, ContractError
from tuner.testing._optimizer import QUICK_OPTIMIZER_CHECKS
from tuner.testing._penalty import QUICK_PENALTY_CHECKS
from tuner.testing._runner import _run, run_checks

__all__ = ["PluginReport", "run_installed_checks", "check_installed", "failing_plugins", "side_by_side_failures", "QUICK_CHECKS",
           "QUICK_SIDE_BY_SIDE"]

_REGISTRIES: dict[str, Registry[Any]] = {"penalty": penalties, "optimizer": optimizers}

QUICK_CHECKS: dict[str, tuple[str, ...]] = {"penalty": QUICK_PENALTY_CHECKS, "optimizer": QUICK_OPTIMIZER_CHECKS}
"""The checks :func:`failing_plugins` runs, by kind (at the default hyperparameters only)."""

QUICK_SIDE_BY_SIDE: dict[str, tuple[str, ...]] = {
    "penalty": ("interface", "search_space", "value_finite", "batch_values"),
    "optimizer": ("interface", "search_space", "prox_mode", "build", "batch_step", "batch_divergence"),
}
"""The checks :func:`side_by_side_failures` runs for a plugin that declares ``supports_batch``
(the side-by-side ones; the others are what they need): values per trial for a penalty; for an
optimizer, one epoch of three trials against each alone, and a diverging trial beside two others
(gradient clipping by one norm over every trial's weights passed the first: toy gradients are
too small to clip). Tens to hundreds of milliseconds a plugin, so a study runs them only when its
trials may train side by side."""


@dataclass
class PluginReport:
    """The checks of one installed plugin: its group, entry point and origin."""

    group: str  # "penalty" or "optimizer"
    name: str
    value: str
    distribution: str
    version: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "name": self.name, "entry_point": self.value, "distribution": self.distribution,
            "version": self.version, "ok": self.ok, "checks": [r.to_dict() for r in self.results],
        }


def _registry(kind: str) -> Registry[Any]:
    if kind not in _REGISTRIES:
        raise PluginError(f"The 'group' parameter must be 'penalty' or 'optimizer'; got {kind!r} instead.")
    return _REGISTRIES[kind]


def run_installed_checks(name: str, group: str | None = None, *, seed: int = 0) -> list[PluginReport]:
    """Run the checks on the installed plugin ``name`` of ``group`` (``"penalty"``,
    ``"optimizer"``, or ``None`` for whichever groups have it).

    A broken entry point (one the registry could not load) gives a failed ``load`` check
    with the registry's reason. An unknown name raises :class:`tuner.PluginError` listing the
    usable plugins.
    """
    chosen = [_registry(group)] if group is not None else list(_REGISTRIES.values())
    found: list[tuple[Registry[Any], Any]] = []
    for registry in chosen:
        # the plugin the registry uses first, then any newcomer it refused under the same name (a
        # third party's 'l2' beside the built-in): both reported, the usable one checked
        same = sorted((info for info in registry.infos() if info.name == name), key=lambda info: not info.ok)
        found.extend((registry, info) for info in same)
    if not found:
        if group:
            _registry(group).info(name)  # raises PluginError with the usable names
        raise PluginError(
            f"Unknown plugin {name!r}: no penalty or optimizer has that name. Usable penalties: "
            f"{', '.join(penalties.names()) or 'none'}; usable optimizers: {', '.join(optimizers.names()) or 'none'}."
        )
    reports = []
    for registry, info in found:
        if info.plugin is None:
            try:
                registry.get(name)
                reason = info.error or "it could not be loaded"
            except PluginError as exc:
                reason = str(exc)
            results = [CheckResult("load", FAIL, reason)]
        else:
            results = [CheckResult("load", PASS, f"{info.value} from {info.distribution} {info.version}")]
            results += run_checks(info.plugin, kind=registry.kind, name=name, seed=seed)
        reports.append(PluginReport(registry.kind, name, info.value, info.distribution, info.version, results))
    return reports


def check_installed(name: str, group: str | None = None, *, seed: int = 0) -> list[PluginReport]:
    """Like :func:`run_installed_checks` but raise :class:`ContractError` on the first failure.

    Use it in a plugin package's tests to check that the entry point is wired up: that the
    registry finds ``name``, loads it and that it passes every check.
    """
    reports = run_installed_checks(name, group, seed=seed)
    for report in reports:
        failed = [r for r in report.results if r.failed]
        if failed:
            raise ContractError(report.group, f"'{name}' ({report.value}, distribution {report.distribution!r})",
                                failed[0].check, failed[0].reason, [r.check for r in failed[1:]])
    return reports


_QUICK_CACHE: dict[tuple[str, str, int, tuple[str, ...]], tuple[object, str | None]] = {}
"""(kind, name, id(plugin), checks) -> (the plugin, kept alive so its id stays its own; the reason or None)."""
REASON_CHARS = 300


def failing_plugins(kind: str, names: Iterable[str]) -> dict[str, str]:
    """The installed plugins among ``names`` that would crash or silently misbehave in a study,
    each with a one-line reason.

    ``kind`` is ``"penalty"`` or ``"optimizer"``. A quick subset of the contract checks
    (:data:`QUICK_CHECKS`, at the default hyperparameters: tensor and per-weight prox steps,
    float32 and float64, the proximal step of an after-step optimizer; trials side by side are
    :func:`side_by_side_failures`'s) runs once per plugin and process, in tens of milliseconds. A plugin the registry could not
    load is reported with the registry's reason; an unknown name is left out (the caller's own
    validation names it). ``tuner plugins check NAME`` runs every check.
    """
    registry = _registry(kind)
    usable = set(registry.names())
    # a name's plugin is the one the registry uses: not a newcomer it refused under a built-in's name
    infos = {info.name: info for info in registry.infos() if info.ok or info.name not in usable}
    out: dict[str, str] = {}
    for name in names:
        info = infos.get(name)
        if info is None:
            continue
        if info.plugin is None:
            out[name] = _one_line(f"it cannot be loaded: {info.error}")
            continue
        reason = _cached_reason(kind, name, info.plugin, QUICK_CHECKS[kind])
        if reason is not None:
            out[name] = reason
    return out


def side_by_side_failures(kind: str, names: Iterable[str]) -> dict[str, str]:
    """The installed plugins among ``names`` that declare ``supports_batch`` but fail the quick
    side-by-side check (:data:`QUICK_SIDE_BY_SIDE`), each with a one-line reason: their trials
    must train one at a time. Runs once per plugin and process; plugins that cannot be loaded or
    do not declare the support are left out."""
    registry = _registry(kind)
    out: dict[str, str] = {}
    for name in names:
        info = next((i for i in registry.infos() if i.name == name and i.ok), None)
        if info is None or getattr(info.plugin, "supports_batch", False) is not True:
            continue
        reason = _cached_reason(kind, name, info.plugin, QUICK_SIDE_BY_SIDE[kind])
        if reason is not None:
            out[name] = reason
    return out


def _cached_reason(kind: str, name: str, plugin: object, checks: tuple[str, ...]) -> str | None:
    """Why ``plugin`` fails ``checks`` (None: it passes), run once per plugin, checks and process."""
    key = (kind, name, id(plugin), checks)
    if key not in _QUICK_CACHE:
        _QUICK_CACHE[key] = (plugin, _quick_reason(kind, name, plugin, checks))
    return _QUICK_CACHE[key][1]


def _quick_reason(kind: str, name: str, plugin: object, checks: tuple[str, ...]) -> str | None:
    results = _run(plugin, kind=kind, name=name, seed=0, only=checks)
    failed = [r for r in results if r.failed]
    if not failed:
        return None
    return _one_line(f"fails the contract check '{failed[0].check}': {failed[0].reason}")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 3] + "..."
