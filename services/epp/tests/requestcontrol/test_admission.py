"""Legacy admission: sheddable requests dropped with 429 on a saturated pool."""

import pytest

from igw.common.errors import ResourceExhaustedError
from igw.epp.requestcontrol import LegacyAdmission, admit
from igw.epp.scheduling.plugins import UtilizationDetector
from igw.epp.testing.builders import FakeClock, endpoint, request

SATURATED = [endpoint(waiting=10)]
IDLE = [endpoint()]


@pytest.mark.parametrize(
    ("priority", "candidates", "shed"),
    [
        pytest.param(-1, SATURATED, True, id="sheddable-saturated-dropped"),
        pytest.param(-1, IDLE, False, id="sheddable-idle-admitted"),
        pytest.param(0, SATURATED, False, id="standard-always-admitted"),
        pytest.param(5, [], False, id="critical-no-endpoints-admitted"),
        pytest.param(-1, [], True, id="sheddable-no-endpoints-dropped"),
    ],
)
def test_admit(priority: int, candidates: list[object], shed: bool) -> None:
    detector = UtilizationDetector(clock=FakeClock())
    if not shed:
        admit(request(priority=priority), candidates, detector)  # type: ignore[arg-type]  # lists of endpoint states, typed loosely by the table
        return
    with pytest.raises(ResourceExhaustedError) as info:
        admit(request(priority=priority), candidates, detector)  # type: ignore[arg-type]  # lists of endpoint states, typed loosely by the table
    assert info.value.status == 429
    assert info.value.body() == (
        "inference error: ResourceExhausted - system saturated, sheddable request dropped"
    )


async def test_legacy_admission_is_the_async_seam() -> None:
    admission = LegacyAdmission(UtilizationDetector(clock=FakeClock()))
    await admission.admit(request(priority=-1), IDLE)
    with pytest.raises(ResourceExhaustedError):
        await admission.admit(request(priority=-1), SATURATED)
