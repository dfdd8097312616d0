"""`static-usage-limit-policy`: one ceiling for every band."""

import pytest

from igw.epp.flowcontrol.plugins import StaticUsageLimitPolicy


def test_every_band_gets_the_threshold() -> None:
    assert StaticUsageLimitPolicy().compute_limit(0.3, [10, 0, -1]) == [1.0, 1.0, 1.0]
    assert StaticUsageLimitPolicy(threshold=0.8).compute_limit(0.9, [0]) == [0.8]


def test_the_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold must be positive"):
        StaticUsageLimitPolicy(threshold=0.0)
