"""The tables `igw-epp endpoints` and `igw-epp explain` print: key cells, not snapshots."""

from __future__ import annotations

from igw.epp.admin import AdminService, endpoints_table, explain_table
from igw.epp.admin.service import explanation_from_message, explanation_message
from igw.epp.admin.tables import format_table
from igw.epp.config import PROFILES, EppConfig, load_config
from igw.epp.framework import PluginHandle
from igw.epp.testing.admin_fleet import CHAT, StaticSource, chat_body
from igw.epp.testing.builders import FakeClock, seeded
from igw.epp.testing.requestpath import director_for

FILTERING = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: header-based-testing-filter
- type: queue-scorer
- type: kv-cache-utilization-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: header-based-testing-filter}
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 1}
"""


def rows(table: str) -> dict[str, list[str]]:
    """Table rows by endpoint name: the mark (`*`, `+` or ""), then the row's words."""
    out: dict[str, list[str]] = {}
    for line in table.splitlines():
        words = line.split()
        mark = words.pop(0) if words[:1] in (["*"], ["+"]) else ""
        if words and words[0].startswith("pod-"):
            out[words[0]] = [mark, *words]
    return out


def test_format_table_pads_columns_and_right_aligns_numbers() -> None:
    table = format_table(("NAME", "N"), [("a", "1"), ("long-name", "100")], right={1})

    assert table.splitlines() == ["NAME         N", "a            1", "long-name  100"]


def test_endpoints_table(service: AdminService) -> None:
    table = endpoints_table(service.inventory())

    header = table.splitlines()[0].split()
    assert header == ["NAME", "ADDRESS", "WAITING", "RUNNING", "KV%", "ADAPTERS", "AGE", "STALE",
                      "IN-FLIGHT"]  # fmt: skip
    a, b = rows(table)["pod-a-rank-0"][1:], rows(table)["pod-b-rank-0"][1:]
    assert a[:5] == ["pod-a-rank-0", "10.0.0.1:8000", "6", "4", "70.0"]
    assert (a[6], a[7]) == ("5.00s", "yes")
    assert (b[5], b[7], b[8]) == ("food-review-1/4", "no", "0")
    assert "in-flight: no configured plugin tracks it" in table


async def test_explain_table_marks_the_pick_and_sums_weighted_scores(service: AdminService) -> None:
    table = explain_table(await service.explainer.explain(CHAT, {}, chat_body("hi")))

    assert "queue-scorer x2" in table
    assert "prefix-cache-scorer x3" in table
    c = rows(table)["pod-c-rank-0"]
    assert c[0] == "*"
    assert c[2:4] == ["1.000", "(2.000)"]  # queue: score, then score x weight
    assert c[-2:] == ["3.800", "picked"]
    assert rows(table)["pod-a-rank-0"][0] == ""  # neither picked nor a fallback
    assert "pick: pod-c-rank-0" in table


async def test_explain_table_marks_filtered_out_endpoints(source: StaticSource) -> None:
    config: EppConfig = load_config(FILTERING, handle=PluginHandle(rng=seeded(), clock=FakeClock()))
    service = AdminService.for_director(director_for(config, source), config.plugins)
    headers = {"test-epp-endpoint-selection": "10.0.0.1,10.0.0.2"}

    table = explain_table(await service.explainer.explain(CHAT, headers, chat_body("hi")))

    c = rows(table)["pod-c-rank-0"]
    assert c[1:] == ["pod-c-rank-0", "-", "-", "-", "filtered", "by", "header-based-testing-filter"]
    assert rows(table)["pod-b-rank-0"][0] == "*"


async def test_explain_table_shows_the_error(service: AdminService) -> None:
    table = explain_table(await service.explainer.explain(CHAT, {}, b"{"))

    assert "error: HTTP 400: inference error: BadRequest - error unmarshaling" in table


async def test_explain_shows_the_learned_speed_prediction_and_in_flight_correction(
    source: StaticSource,
) -> None:
    clock = FakeClock()
    config = load_config(
        PROFILES["learned-latency"], handle=PluginHandle(rng=seeded(), clock=clock)
    )
    service = AdminService.for_director(director_for(config, source), config.plugins)

    explanation = await service.explainer.explain(CHAT, {}, chat_body("hi"))
    # What `igw-epp explain` prints, after the admin API's wire.
    table = explain_table(explanation_from_message(explanation_message(explanation)))

    assert "predicted-ttft-scorer x4" in table
    details = {
        line.split()[0]: line for line in table.split("predicted-ttft-scorer:")[1].splitlines()[1:4]
    }
    assert set(details) == {"pod-a-rank-0", "pod-b-rank-0", "pod-c-rank-0"}
    for line in details.values():
        assert "ms/token x (256 step +" in line
        assert "own uncached)" in line
    # pod-a's scrape shows 6 waiting the EPP did not send: each counts as this request's size.
    assert "queue 6 waiting + 4 running scraped, +0 sent since" in details["pod-a-rank-0"]
    scores = table.split("predicted-ttft-scorer:\n")[0]
    assert rows(scores)["pod-c-rank-0"][0] == "*"  # the idle pod is predicted soonest
