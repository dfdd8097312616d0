"""`prefix-cache-affinity-filter`: keeps strong prefix matches, sometimes explores."""

from igw.epp.framework import CycleState
from igw.epp.scheduling import PREFIX_CACHE_MATCH, PrefixCacheMatchInfo
from igw.epp.scheduling.plugins import PrefixCacheAffinityFilter
from igw.epp.testing.builders import endpoints, request, seeded


def state_with(matches: dict[str, int], total: int = 10) -> CycleState:
    state = CycleState()
    for name, n in matches.items():
        state.set_attribute(PREFIX_CACHE_MATCH, name, PrefixCacheMatchInfo(n, total))
    return state


def test_keeps_endpoints_at_or_over_the_threshold() -> None:
    f = PrefixCacheAffinityFilter(rng=seeded(0), exploration_probability=0.0)
    state = state_with({"pod-0-rank-0": 8, "pod-1-rank-0": 7, "pod-2-rank-0": 10})
    kept = f.filter(request(), state, endpoints(3))
    assert [e.endpoint.name for e in kept] == ["pod-0-rank-0", "pod-2-rank-0"]


def test_no_strong_match_is_a_no_op() -> None:
    f = PrefixCacheAffinityFilter(rng=seeded(0), exploration_probability=0.0)
    eps = endpoints(2)
    assert list(f.filter(request(), state_with({"pod-0-rank-0": 2}), eps)) == eps
    assert list(f.filter(request(), CycleState(), eps)) == eps


def test_explores_with_the_configured_probability() -> None:
    f = PrefixCacheAffinityFilter(rng=seeded(3), exploration_probability=0.5)
    state = state_with({"pod-0-rank-0": 10})
    sizes = [len(f.filter(request(), state, endpoints(3))) for _ in range(400)]
    assert 140 < sizes.count(3) < 260
    assert sizes.count(1) == 400 - sizes.count(3)
