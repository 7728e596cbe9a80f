"""Loading plugins from entry points: lazily, sorted, validated, and failing per plugin.

One generic :class:`Registry` serves both groups. Built-ins and third-party plugins go
through the same path; ``TUNER_DISABLE_PLUGIN_AUTOLOAD=1`` keeps only the plugins of the
``logreg-tuner`` distribution itself.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import tuner._plugin_api as plugin_api
from tuner._plugin_api import PROX_MODES, Optimizer, Penalty, compatibility_reason
from tuner._space import validate_space
from tuner.errors import PluginError

__all__ = ["PluginInfo", "Registry", "penalties", "optimizers", "OWN_DISTRIBUTION", "AUTOLOAD_ENV", "NAME_PATTERN",
           "declaration_problem"]

OWN_DISTRIBUTION = "logreg-tuner"
AUTOLOAD_ENV = "TUNER_DISABLE_PLUGIN_AUTOLOAD"
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
"""What a plugin name must look like, so that it works in ``--penalty a,b`` and ``penalty.NAME.x``."""

T = TypeVar("T", Penalty, Optimizer)


@dataclass
class PluginInfo(Generic[T]):
    """One entry point of a plugin group, loaded or broken."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    plugin: T | None = None
    error: str | None = None
    search_space: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def description(self) -> str:
        return self.plugin.description if self.plugin is not None else ""


def declaration_problem(plugin: Penalty | Optimizer) -> str | None:
    """What is wrong with the flags and incompatibility sets ``plugin`` declares, or ``None``.

    The study reads them for every plugin it lists or pairs (``'l2' in None`` would stop a
    study that never picks this plugin), so a registry refuses a plugin whose declarations
    have the wrong types, as the conformance kit's ``interface`` check does."""
    penalty = isinstance(plugin, Penalty)
    flags = ("supports_batch", *(("has_prox", "elementwise_prox") if penalty else ("full_batch", "uses_hessian", "quasi_newton", "hessian_products")))
    for flag in flags:
        value = getattr(plugin, flag, False)
        if not isinstance(value, bool):
            return f"{flag} must be a bool; got {value!r}"
    attr = "incompatible_optimizers" if penalty else "incompatible_penalties"
    names: Any = getattr(plugin, attr, frozenset())
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names):
        return f"{attr} must be a set of plugin names; got {names!r}"
    return None


def _validate(obj: Any, name: str, base: type) -> Any:
    """Return an instance of ``base`` built from ``obj`` or raise ``ValueError`` saying why not."""
    if inspect.isclass(obj):
        if not issubclass(obj, base):
            raise ValueError(f"{obj.__module__}.{obj.__qualname__} is not a subclass of tuner.{base.__name__}")
        try:
            obj = obj()
        except Exception as exc:  # a plugin's constructor is third-party code
            raise ValueError(f"instantiating it with no arguments failed: {type(exc).__name__}: {exc}") from None
    elif not isinstance(obj, base):
        raise ValueError(f"{obj!r} is neither a tuner.{base.__name__} subclass nor an instance of one")
    if obj.name != name:
        raise ValueError(f"its name attribute {obj.name!r} differs from its entry-point name {name!r}")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"its name {name!r} is not identifier-like (letters, digits, '_' or '-')")
    if not isinstance(obj.description, str) or not obj.description.strip():
        raise ValueError("it has no description (a one-line string)")
    if not isinstance(obj.search_space, Mapping):
        raise ValueError(f"search_space must be a mapping; got {type(obj.search_space).__name__}")
    try:
        validate_space(obj.search_space)
    except ValueError as exc:
        raise ValueError(f"invalid search space: {exc}") from None
    problem = declaration_problem(obj)
    if problem:
        raise ValueError(problem)
    if base is Penalty:
        if type(obj).smooth_value is Penalty.smooth_value:
            raise ValueError("it does not implement smooth_value()")
        if obj.has_prox and (type(obj).prox is Penalty.prox or type(obj).nonsmooth_value is Penalty.nonsmooth_value):
            raise ValueError("has_prox is True but prox() or nonsmooth_value() is not implemented")
    else:
        if type(obj).build is Optimizer.build:
            raise ValueError("it does not implement build()")
        if obj.prox_mode not in PROX_MODES:
            raise ValueError(f"prox_mode must be one of {', '.join(map(repr, PROX_MODES))}; got {obj.prox_mode!r}")
    return obj


def _own(ep: metadata.EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name == OWN_DISTRIBUTION


class Registry(Generic[T]):
    """The plugins of one entry-point group, loaded on first use."""

    def __init__(self, group: str, base: type[T], kind: str, plural: str | None = None) -> None:
        self.group = group
        self.base: type[T] = base
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._infos: dict[str, PluginInfo[T]] | None = None
        self._shadowed: list[PluginInfo[T]] = []

    def reload(self) -> None:
        """Forget what was loaded (after installing a package, or in tests)."""
        self._infos = None

    def _entry_points(self) -> list[metadata.EntryPoint]:
        eps = list(metadata.entry_points(group=self.group))
        if os.environ.get(AUTOLOAD_ENV, "").strip().lower() in ("1", "true", "yes"):
            eps = [ep for ep in eps if _own(ep)]
        # The same distribution can be seen twice (e.g. an editable install and a build dir).
        seen: set[tuple[str, str, str]] = set()
        unique = []
        for ep in eps:
            key = (ep.name, ep.value, ep.dist.name if ep.dist else "")
            if key not in seen:
                seen.add(key)
                unique.append(ep)
        return sorted(unique, key=lambda ep: (ep.name, ep.dist.name if ep.dist else ""))

    def _load(self) -> dict[str, PluginInfo[T]]:
        if self._infos is not None:
            return self._infos
        infos: dict[str, PluginInfo[T]] = {}
        claimants: dict[str, list[str]] = {}
        self._shadowed.clear()
        # a built-in first under its name: a third-party plugin of the same name cannot replace it
        for ep in sorted(self._entry_points(), key=lambda ep: (ep.name, not _own(ep))):
            dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
            version = ep.dist.version if ep.dist is not None else "?"
            info: PluginInfo[T] = PluginInfo(self.group, ep.name, ep.value, dist, version)
            claimants.setdefault(ep.name, []).append(dist)
            if ep.name in infos and infos[ep.name].distribution == OWN_DISTRIBUTION:
                # The built-in stays: disabling it would break every study that uses it (and
                # the conformance kit, whose partners are built-ins).
                info.error = (f"the name {ep.name!r} belongs to a built-in {self.kind} of {OWN_DISTRIBUTION}; "
                              "rename this plugin (its entry point and its name attribute)")
                self._shadowed.append(info)
                continue
            if ep.name in infos:
                # Neither wins: which one loads would depend on the order of sys.path.
                other = infos[ep.name]
                names = ", ".join(repr(d) for d in claimants[ep.name])
                other.error = (
                    f"the name {ep.name!r} is claimed by {len(claimants[ep.name])} distributions, {names}; "
                    "uninstall all but one of them"
                )
                other.plugin, other.search_space = None, {}
                continue
            dtype = _default_dtype()
            try:
                obj = ep.load()
            except (Exception, SystemExit) as exc:  # any import-time failure of third-party code
                info.error = f"importing {ep.value} failed: {type(exc).__name__}: {exc}"
            else:
                try:
                    info.plugin = _validate(obj, ep.name, self.base)
                    info.search_space = dict(info.plugin.search_space)
                except ValueError as exc:
                    info.error = f"invalid {self.kind} plugin {ep.value}: {exc}"
                except Exception as exc:  # third-party code run by the checks (a property, a constructor...)
                    info.plugin = None
                    info.error = f"invalid {self.kind} plugin {ep.value}: {type(exc).__name__}: {exc}"
            changed = _put_back_default_dtype(dtype)
            if changed:  # every tensor of the process, a user's own included, would have changed dtype
                info.plugin, info.search_space = None, {}
                info.error = (f"loading {ep.value} changed torch's default dtype to {changed} (set_default_dtype), "
                              "for the whole process; a plugin must leave torch's global state alone")
            infos[ep.name] = info
        self._infos = infos
        return infos

    def infos(self) -> list[PluginInfo[T]]:
        """Every entry point of the group, broken ones included (a third-party plugin named like
        a built-in after it), sorted by name."""
        every = list(self._load().values()) + self._shadowed
        return sorted(every, key=lambda i: (i.name, i.distribution != OWN_DISTRIBUTION))

    def names(self) -> list[str]:
        """The names of the usable plugins, in name order."""
        return sorted(n for n, i in self._load().items() if i.ok)

    def info(self, name: str) -> PluginInfo[T]:
        infos = self._load()
        if name not in infos:
            raise PluginError(f"Unknown {self.kind} {name!r}. Usable {self.plural}: {', '.join(self.names()) or 'none'}.")
        return infos[name]

    def get(self, name: str) -> T:
        """The plugin called ``name``; a clear :class:`PluginError` when unknown or broken."""
        info = self.info(name)
        if info.plugin is None:
            raise PluginError(
                f"The {self.kind} {name!r} (distribution {info.distribution!r}) is broken: {info.error}. "
                f"Usable {self.plural}: {', '.join(self.names()) or 'none'}."
            )
        return info.plugin


penalties: Registry[Penalty] = Registry("logreg_tuner.penalties", Penalty, "penalty", "penalties")
optimizers: Registry[Optimizer] = Registry("logreg_tuner.optimizers", Optimizer, "optimizer")


def _default_dtype() -> Any:
    """torch's default dtype, or None when torch is not imported yet (its default is float32)."""
    torch = sys.modules.get("torch")
    return torch.get_default_dtype() if torch is not None else None


def _put_back_default_dtype(before: Any) -> str:
    """Restore torch's default dtype as it was before a plugin loaded; the dtype it had set ('' if none)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return ""
    expected = before if before is not None else torch.float32
    now = torch.get_default_dtype()
    if now == expected:
        return ""
    torch.set_default_dtype(expected)
    return str(now).replace("torch.", "")


def _proximal_optimizers(penalty: Penalty) -> str:
    """': 'newton', 'fista' (exact solvers), 'adam', ...': the installed optimizers that minimise
    ``penalty``'s non-smooth part, the full-batch ones first; '' when the registry cannot say."""
    try:
        usable = [optimizers.get(name) for name in optimizers.names()]
    except Exception:  # noqa: BLE001 - a message must not fail on a broken install
        return ""
    fits = [o for o in usable if o.prox_mode != "unsupported" and compatibility_reason(penalty, o) is None]
    if not fits:
        return ""
    exact = [o.name for o in fits if o.full_batch]
    steps = [o.name for o in fits if not o.full_batch]
    return ": " + ", ".join([*(f"'{n}'" for n in exact[:-1]), *([f"'{exact[-1]}' (exact solvers)"] if exact else []),
                             *(f"'{n}'" for n in steps)])


def full_batch_optimizers(penalties_in_play: Iterable[Penalty] | None = None) -> str:
    """' (fista, lbfgs, newton)': the installed full-batch optimizers in name order, those that
    take at least one of ``penalties_in_play`` when given, for advice in messages; '' when there
    are none or the registry cannot say."""
    pens = list(penalties_in_play) if penalties_in_play is not None else None
    try:
        exact = [o for o in (optimizers.get(name) for name in optimizers.names()) if o.full_batch]
        names = [o.name for o in exact if pens is None or any(compatibility_reason(p, o) is None for p in pens)]
    except Exception:  # noqa: BLE001 - a message must not fail on a broken install
        return ""
    return f" ({', '.join(names)})" if names else ""


plugin_api.proximal_hint = _proximal_optimizers
