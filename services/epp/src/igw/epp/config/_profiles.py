"""Phase: scheduling profiles and the profile handler, with upstream's system defaults (§3.3).

* no `schedulingProfiles` -> one `default` profile with every configured filter, scorer and
  picker (weight 1.0);
* a profile without a picker gets the first configured picker, else a new `max-score-picker`;
  a profile naming two pickers is an error;
* no profile handler and exactly one profile -> `single-profile-handler`; more than one handler,
  or `single-profile-handler` with more than one profile, is an error.
"""

from __future__ import annotations

import math

from igw.epp.config._build import Build
from igw.epp.config.errors import ConfigError
from igw.epp.config.schema import ProfileDoc, ProfilePluginDoc
from igw.epp.framework import kinds
from igw.epp.framework.scheduling import Filter, Picker, ProfileHandler
from igw.epp.scheduling.plugins import MaxScorePicker, SingleProfileHandler
from igw.epp.scheduling.profile import SchedulerProfile, WeightedScorer
from igw.epp.scheduling.scheduler import Scheduler

__all__ = ["build_scheduler"]

DEFAULT_PROFILE = "default"
_PROFILE_KINDS = (kinds.FILTER, kinds.SCORER, kinds.PICKER)


def build_scheduler(build: Build, docs: list[ProfileDoc]) -> Scheduler:
    if not docs:
        refs = [
            ProfilePluginDoc(plugin_ref=name)
            for name, p in build.instances.items()
            if any(kind.accepts(p) for kind in _PROFILE_KINDS)
        ]
        docs = [ProfileDoc(name=DEFAULT_PROFILE, plugins=refs)]
    names = [d.name for d in docs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"schedulingProfiles[{i}].name", f"profile {name!r} is defined twice")
    profiles = [_profile(build, i, doc) for i, doc in enumerate(docs)]
    return Scheduler(_handler(build, len(profiles)), profiles, build.handle.metrics)


def _profile(build: Build, index: int, doc: ProfileDoc) -> SchedulerProfile:
    filters: list[Filter] = []
    scorers: list[WeightedScorer] = []
    pickers: list[Picker] = []
    for j, ref in enumerate(doc.plugins):
        path = f"schedulingProfiles[{index}].plugins[{j}]"
        plugin = build.instances.get(ref.plugin_ref)
        if plugin is None:
            raise ConfigError(f"{path}.pluginRef", f"no plugin named {ref.plugin_ref!r} in plugins")
        if not any(kind.accepts(plugin) for kind in _PROFILE_KINDS):
            raise ConfigError(
                f"{path}.pluginRef",
                f"plugin {ref.plugin_ref!r} ({plugin.type_name}) is not a filter, scorer or picker",
            )
        if not math.isfinite(ref.weight) or ref.weight < 0:
            raise ConfigError(f"{path}.weight", f"must be a non-negative number, got {ref.weight}")
        if kinds.FILTER.accepts(plugin):
            filters.append(plugin)
        if kinds.SCORER.accepts(plugin):
            scorers.append(WeightedScorer(plugin, ref.weight))
        if kinds.PICKER.accepts(plugin):
            pickers.append(plugin)
    if len(pickers) > 1:
        raise ConfigError(
            f"schedulingProfiles[{index}].plugins",
            f"profile {doc.name!r} has {len(pickers)} pickers; a profile takes at most one",
        )
    picker = pickers[0] if pickers else _default_picker(build)
    return SchedulerProfile(doc.name, filters, scorers, picker, build.handle.metrics)


def _default_picker(build: Build) -> Picker:
    existing = build.of_kind(kinds.PICKER)
    if existing:
        return existing[0]
    name = MaxScorePicker.type_name
    return build.resolve(name, kinds.PICKER, "schedulingProfiles")


def _handler(build: Build, profile_count: int) -> ProfileHandler:
    handlers = build.of_kind(kinds.PROFILE_HANDLER)
    if len(handlers) > 1:
        names = ", ".join(repr(h.name) for h in handlers)
        raise ConfigError("plugins", f"only one profile handler may be configured, found {names}")
    if not handlers:
        if profile_count != 1:
            raise ConfigError(
                "plugins", f"{profile_count} scheduling profiles need a profile handler plugin"
            )
        name = SingleProfileHandler.type_name
        handlers = [build.resolve(name, kinds.PROFILE_HANDLER, "plugins")]
    [handler] = handlers
    if isinstance(handler, SingleProfileHandler) and profile_count > 1:
        raise ConfigError(
            "schedulingProfiles",
            f"single-profile-handler {handler.name!r} supports one profile, got {profile_count}",
        )
    return handler
