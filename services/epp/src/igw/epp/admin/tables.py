"""Plain-text tables for `igw-epp endpoints` and `igw-epp explain` (no dependency: a tiny
column formatter, numbers right-aligned)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from igw.epp.admin.explain import Explanation
from igw.epp.admin.inventory import EndpointReport, Inventory
from igw.epp.framework.results import ProfileExplanation

__all__ = ["endpoints_table", "explain_table", "format_table"]

_GAP = "  "


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Columns padded to their widest cell; the columns in `right` are right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return _GAP.join(padded).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def _age(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "never"
    return f"{seconds:.2f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def _adapters(report: EndpointReport) -> str:
    m = report.metrics
    text = ",".join(sorted(m.active_models)) or "-"
    if m.waiting_models:
        text += f" (+{len(m.waiting_models)} waiting)"
    return f"{text}/{m.max_active_models}" if m.max_active_models else text


def _endpoint_row(r: EndpointReport) -> tuple[str, ...]:
    m = r.metrics
    load = f"{r.in_flight.requests} ({r.in_flight.tokens} tok)"
    address = f"{r.endpoint.address}:{r.endpoint.port}"
    kv = f"{m.kv_cache_usage * 100:.1f}"
    stale = "yes" if r.stale else "no"
    return (r.endpoint.name, address, str(m.waiting), str(m.running), kv, _adapters(r),
            _age(r.age_s), stale, load)  # fmt: skip


def endpoints_table(inventory: Inventory) -> str:
    header = ("NAME", "ADDRESS", "WAITING", "RUNNING", "KV%", "ADAPTERS", "AGE", "STALE",
              "IN-FLIGHT")  # fmt: skip
    rows = [_endpoint_row(r) for r in inventory.endpoints]
    notes = [f"{len(rows)} endpoints; stale after {_age(inventory.staleness_threshold_s)}"]
    if not inventory.in_flight_tracked:
        notes.append("in-flight: no configured plugin tracks it (always 0)")
    return format_table(header, rows, {2, 3, 4, 6}) + "\n" + "; ".join(notes)


def _removed_by(profile: ProfileExplanation, name: str) -> str:
    for step in profile.filters:
        if name not in step.remaining:
            return f"filtered by {step.plugin}"
    return "not scored"


def _profile_table(profile: ProfileExplanation, candidates: Sequence[str]) -> str:
    header = ["", "ENDPOINT", *(f"{s.plugin} x{s.weight:g}" for s in profile.scorers), "TOTAL"]
    header.append("NOTE")
    position = {name: i for i, name in enumerate(profile.endpoints)}
    rows = []
    for name in [*candidates, *(n for n in profile.endpoints if n not in candidates)]:
        i = position.get(name)
        mark = "*" if profile.picked[:1] == (name,) else ("+" if name in profile.picked else "")
        if i is None:
            cells = ["-"] * (len(profile.scorers) + 1)
            rows.append([mark, name, *cells, _removed_by(profile, name)])
            continue
        cells = [f"{s.scores[i]:.3f} ({s.scores[i] * s.weight:.3f})" for s in profile.scorers]
        rank = profile.picked.index(name) + 1 if name in profile.picked else 0
        note = "picked" if rank == 1 else (f"fallback {rank - 1}" if rank else "")
        rows.append([mark, name, *cells, f"{profile.totals[i]:.3f}", note])
    right = set(range(2, len(header) - 1))
    return format_table(header, rows, right)


def _details(profile: ProfileExplanation) -> list[str]:
    """The scorers' own reasons per endpoint (e.g. the predicted TTFT and its parts)."""
    lines = []
    for column in profile.scorers:
        if column.details:
            lines.append(f"{column.plugin}:")
            width = max(len(n) for n in profile.endpoints)
            lines.extend(
                f"  {name.ljust(width)}  {detail}"
                for name, detail in zip(profile.endpoints, column.details, strict=True)
            )
    return lines


def explain_table(explanation: Explanation) -> str:
    """Per profile: endpoints x scorers, cells `score (score x weight)`, the total, and marks:
    `*` the pick, `+` a fallback, `-` an endpoint a filter removed."""
    e = explanation
    model = e.model if e.model == e.target_model else f"{e.model} -> {e.target_model}"
    summary = f"model {model or '-'}, priority {e.priority}, {len(e.candidates)} candidates"
    lines = [f"request {e.request_id}: {summary}"]
    for name, profile in e.profiles.items():
        primary = " (primary)" if name == e.primary_profile else ""
        lines.extend(("", f"profile {name}{primary}:", _profile_table(profile, e.candidates)))
        lines.extend(_details(profile))
        if profile.error:
            lines.append(f"profile error: {profile.error}")
    lines.append("")
    if e.picked:
        fallbacks = f" (fallbacks: {', '.join(e.picked[1:])})" if len(e.picked) > 1 else ""
        lines.append(f"pick: {e.picked[0]}{fallbacks}")
    if e.note:
        lines.append(f"note: {e.note}")
    if e.error is not None:
        lines.append(f"error: HTTP {e.error.status}: {e.error.body}")
    return "\n".join(lines)
