"""`single-profile-handler`: one round over all profiles; the one result is primary."""

import pytest

from igw.epp.framework import CycleState, ProfileResult, SchedulingError
from igw.epp.scheduling.plugins import SingleProfileHandler
from igw.epp.testing.builders import endpoint, request


def test_runs_all_profiles_once() -> None:
    h = SingleProfileHandler()
    assert list(h.pick_profiles(request(), CycleState(), ("default",), {})) == ["default"]
    done = {"default": ProfileResult((endpoint(),))}
    assert list(h.pick_profiles(request(), CycleState(), ("default",), done)) == []


def test_the_single_result_is_primary() -> None:
    result = SingleProfileHandler().process_results(
        request(), CycleState(), {"p": ProfileResult((endpoint("x"),))}
    )
    assert result.primary_profile == "p"
    assert [t.endpoint.name for t in result.targets] == ["x"]


@pytest.mark.parametrize(
    ("results", "message"),
    [
        pytest.param({"p": None}, "failed to run scheduler profile 'p'", id="profile-failed"),
        pytest.param({}, "exactly one", id="none"),
    ],
)
def test_errors(results: dict[str, ProfileResult | None], message: str) -> None:
    with pytest.raises(SchedulingError, match=message) as info:
        SingleProfileHandler().process_results(request(), CycleState(), results)
    assert info.value.status == 429
    assert info.value.message.startswith("failed to find target endpoint: ")
