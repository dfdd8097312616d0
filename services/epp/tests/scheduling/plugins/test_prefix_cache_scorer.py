"""`prefix-cache-scorer`: matched / total blocks from the producer's attribute."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling import PREFIX_CACHE_MATCH, PrefixCacheMatchInfo
from igw.epp.scheduling.plugins import PrefixCacheScorer
from igw.epp.testing.builders import endpoints, request


def test_ratio_of_matched_blocks_and_zero_without_a_match() -> None:
    eps = endpoints(3)
    state = CycleState()
    state.set_attribute(PREFIX_CACHE_MATCH, "pod-0-rank-0", PrefixCacheMatchInfo(4, 4))
    state.set_attribute(PREFIX_CACHE_MATCH, "pod-1-rank-0", PrefixCacheMatchInfo(1, 4))
    assert PrefixCacheScorer().score(request(), state, eps) == [1.0, 0.25, 0.0]


def test_no_attribute_scores_zero_everywhere() -> None:
    assert PrefixCacheScorer().score(request(), CycleState(), endpoints(2)) == [0.0, 0.0]
    assert PrefixCacheScorer().score(request(), CycleState(), []) == []


def test_unknown_parameters_are_rejected_producer_ones_kept() -> None:
    from igw.epp.framework import PluginHandle  # noqa: PLC0415

    scorer = PrefixCacheScorer.from_config("p", {"blockSizeTokens": 32}, PluginHandle())
    assert scorer.producer_params == {"blockSizeTokens": 32}
    with pytest.raises(ValueError, match="weigth"):
        PrefixCacheScorer.from_config("p", {"weigth": 1}, PluginHandle())
