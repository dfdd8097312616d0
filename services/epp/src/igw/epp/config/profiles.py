"""Named configurations igw ships beside upstream's default (`igw-epp --config-profile NAME`).

Upstream's default profile (`DEFAULT_CONFIG`) stays the default, so drop-in users get the same
picks; these are opt-in. Each is an ordinary `EndpointPickerConfig`: print it, copy it, adapt it.

* `learned-latency`: upstream's default profile (queue 2, KV-cache utilisation 2, prefix cache
  3) plus the TTFT predicted for this request (`predicted-ttft-scorer`, weight 4): each
  endpoint's queue corrected by what the EPP sent since the last scrape, its prefill speed
  learned online from how long requests waited there, and the load it is being given
  (`online-latency-producer`). The default's terms keep its prefix affinity and spread; the
  prediction moves work off slow, saturating or adapter-less pods.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LEARNED_LATENCY", "PROFILES"]

LEARNED_LATENCY = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: online-latency-producer
- type: predicted-ttft-scorer
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: predicted-ttft-scorer, weight: 4}
"""

PROFILES: Mapping[str, str] = {"learned-latency": LEARNED_LATENCY}
"""Profile name -> its EndpointPickerConfig YAML."""
