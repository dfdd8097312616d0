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
from typing import cast

from igw.epp.config._build import Build
from igw.epp.config.errors import ConfigError
from igw.epp.config.schema import ProfileDoc, ProfilePluginDoc
from igw.epp.scheduling.contracts import (
    Filter,
    Picker,
    Plugin,
    ProfileHandler,
    Scorer,
    plugin_kinds,
)
from igw.epp.scheduling.plugins import MaxScorePicker, SingleProfileHandler
from igw.epp.scheduling.profile import SchedulerProfile, WeightedScorer
from igw.epp.scheduling.scheduler import Scheduler

__all__ = ["build_scheduler"]

DEFAULT_PROFILE = "default"
_PROFILE_KINDS = ("filter", "scorer", "picker")


def build_scheduler(build: Build, docs: list[ProfileDoc]) -> Scheduler:
    if not docs:
        refs = [
            ProfilePluginDoc(pluginRef=name)
            for name, p in build.instances.items()
            if plugin_kinds(type(p)) & set(_PROFILE_KINDS)
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
        plugin = build.instances.get(ref.pluginRef)
        if plugin is None:
            raise ConfigError(f"{path}.pluginRef", f"no plugin named {ref.pluginRef!r} in plugins")
        kinds = plugin_kinds(type(plugin))
        if not kinds & set(_PROFILE_KINDS):
            raise ConfigError(
                f"{path}.pluginRef",
                f"plugin {ref.pluginRef!r} ({plugin.type_name}) is not a filter, scorer or picker",
            )
        if not math.isfinite(ref.weight) or ref.weight < 0:
            raise ConfigError(f"{path}.weight", f"must be a non-negative number, got {ref.weight}")
        if "filter" in kinds:
            filters.append(cast("Filter", plugin))
        if "scorer" in kinds:
            scorers.append(WeightedScorer(cast("Scorer", plugin), ref.weight))
        if "picker" in kinds:
            pickers.append(cast("Picker", plugin))
    if len(pickers) > 1:
        raise ConfigError(
            f"schedulingProfiles[{index}].plugins",
            f"profile {doc.name!r} has {len(pickers)} pickers; a profile takes at most one",
        )
    picker = pickers[0] if pickers else _default_picker(build)
    return SchedulerProfile(doc.name, filters, scorers, picker, build.handle.metrics)


def _default_picker(build: Build) -> Picker:
    existing = build.of_kind("picker")
    if existing:
        return cast("Picker", existing[0])
    name = MaxScorePicker.type_name
    return cast("Picker", build.create(name, name, {}, "schedulingProfiles"))


def _handler(build: Build, profile_count: int) -> ProfileHandler:
    handlers: list[Plugin] = build.of_kind("profile-handler")
    if len(handlers) > 1:
        names = ", ".join(repr(h.name) for h in handlers)
        raise ConfigError("plugins", f"only one profile handler may be configured, found {names}")
    if not handlers:
        if profile_count != 1:
            raise ConfigError(
                "plugins", f"{profile_count} scheduling profiles need a profile handler plugin"
            )
        name = SingleProfileHandler.type_name
        handlers = [build.create(name, name, {}, "plugins")]
    [handler] = handlers
    if isinstance(handler, SingleProfileHandler) and profile_count > 1:
        raise ConfigError(
            "schedulingProfiles",
            f"single-profile-handler {handler.name!r} supports one profile, got {profile_count}",
        )
    return cast("ProfileHandler", handler)
