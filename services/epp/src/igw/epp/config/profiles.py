"""Named configurations igw ships beside upstream's default (`igw-epp --config-profile NAME`).

Upstream's default profile (`DEFAULT_CONFIG`) stays the default, so drop-in users get the same
picks; these are opt-in. Each is an ordinary `EndpointPickerConfig`: print it, copy it, adapt it.

* `learned-latency`: ranks endpoints by the TTFT predicted for this request
  (`predicted-ttft-scorer`), from each endpoint's queue corrected by what the EPP sent since the
  last scrape and its prefill speed learned online from how long requests waited there
  (`online-latency-producer`), with a light prefix-cache affinity on top (the prediction already
  counts cached tokens; the affinity keeps ties, and cold groups, together).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LEARNED_LATENCY", "PROFILES"]

LEARNED_LATENCY = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: online-latency-producer
- type: predicted-ttft-scorer
- type: prefix-cache-scorer
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: predicted-ttft-scorer, weight: 4}
  - {pluginRef: prefix-cache-scorer, weight: 1}
"""

PROFILES: Mapping[str, str] = {"learned-latency": LEARNED_LATENCY}
"""Profile name -> its EndpointPickerConfig YAML."""
