"""The dispatch ledger: a scrape corrected by what the EPP sent since, and the waits it reveals."""

import pytest

from igw.epp.scheduling import DispatchedLoad
from igw.epp.scheduling.plugins._dispatch_ledger import UNTIMED, DispatchLedger
from igw.epp.testing.builders import NOW, endpoint

POD = "pod-0-rank-0"
SPEED = 0.001  # seconds per token


def test_a_burst_inside_one_scrape_interval_is_counted_request_by_request() -> None:
    ledger = DispatchLedger(lag_s=0.0)
    state = endpoint(POD, waiting=1, running=2, updated_at=NOW)
    ledger.reconcile(state, NOW, SPEED)
    for i, tokens in enumerate((100, 200, 300)):
        ledger.dispatch(POD, NOW + 0.001 * (i + 1), tokens, ahead=0)
    load = ledger.load(state, NOW + 0.004, SPEED)
    assert (load.waiting, load.running, load.dispatched) == (1, 2, 3)
    assert load.requests == 6
    # The scrape saw 1 waiting that the EPP did not send: it counts at the mean request size.
    assert 700 < load.queued_tokens < 800


def test_a_new_scrape_turns_departed_requests_into_waits_and_started_work() -> None:
    ledger = DispatchLedger(lag_s=0.0)
    ledger.dispatch(POD, NOW, 100, ahead=0)
    ledger.dispatch(POD, NOW + 0.01, 50, ahead=100)
    ledger.dispatch(POD, NOW + 0.02, 70, ahead=150)
    # At NOW + 0.1 the server reports one request still waiting: the two oldest left.
    scrape = endpoint(POD, waiting=1, updated_at=NOW + 0.1)
    waits = ledger.reconcile(scrape, NOW + 0.1, SPEED)
    # Each left at the midpoint of the interval it was seen leaving in (here: since dispatch).
    assert [w.ahead_tokens for w in waits] == [0, 100]
    assert [w.seconds for w in waits] == pytest.approx([0.05, 0.045])
    # Their 150 tokens of prefill have started; 50 ms later, at 1 ms a token, 100 are left.
    assert ledger.load(scrape, NOW + 0.15, SPEED) == DispatchedLoad(1, 0, 0, 70, 100)
    # The same scrape again reveals nothing; the next one empties the queue.
    assert ledger.reconcile(scrape, NOW + 0.12, SPEED) == []
    last = ledger.reconcile(endpoint(POD, waiting=0, updated_at=NOW + 0.2), NOW + 0.2, SPEED)
    assert [w.ahead_tokens for w in last] == [150]
    drained = ledger.load(endpoint(POD, updated_at=NOW + 0.2), NOW + 1.0, SPEED)
    assert drained.ahead_tokens == 0


def test_a_departure_seen_only_after_a_long_gap_teaches_nothing() -> None:
    """A request that left somewhere in a 5 s gap between reconciliations (no request was placed
    meanwhile) would be credited 2.5 s of wait by the midpoint rule: no observation, but its
    work is still counted as started."""
    ledger = DispatchLedger(lag_s=0.0, max_window_s=0.25)
    ledger.dispatch(POD, NOW, 100, ahead=0)
    still = endpoint(POD, waiting=1, updated_at=NOW + 0.05)
    assert ledger.reconcile(still, NOW + 0.05, SPEED) == []
    assert ledger.reconcile(endpoint(POD, waiting=0, updated_at=NOW + 5), NOW + 5, SPEED) == []
    assert ledger.load(endpoint(POD, updated_at=NOW + 5), NOW + 5, SPEED).started_tokens == 100
    # A departure within the window is still learned from.
    ledger.dispatch(POD, NOW + 5.1, 100, ahead=0)
    still = endpoint(POD, waiting=1, updated_at=NOW + 5.15)
    assert ledger.reconcile(still, NOW + 5.15, SPEED) == []
    waits = ledger.reconcile(endpoint(POD, waiting=0, updated_at=NOW + 5.3), NOW + 5.3, SPEED)
    assert [w.seconds for w in waits] == pytest.approx([0.125])


def test_an_untimed_request_is_accounted_but_not_learned_from() -> None:
    """A request that waited for a LoRA adapter says nothing of the pod's prefill speed."""
    ledger = DispatchLedger(lag_s=0.0)
    ledger.dispatch(POD, NOW, 400, ahead=UNTIMED)
    assert ledger.load(endpoint(POD, waiting=1, updated_at=NOW), NOW, SPEED).queued_tokens == 400
    assert ledger.reconcile(endpoint(POD, waiting=0, updated_at=NOW + 0.1), NOW + 0.1, SPEED) == []
    assert ledger.load(endpoint(POD, updated_at=NOW + 0.1), NOW + 0.1, SPEED).started_tokens == 400


def test_requests_sent_within_the_lag_before_a_scrape_are_not_yet_in_it() -> None:
    ledger = DispatchLedger(lag_s=0.01)
    ledger.dispatch(POD, NOW - 0.005, 100, ahead=0)  # on its way through Envoy at the scrape
    assert ledger.reconcile(endpoint(POD, waiting=0, updated_at=NOW), NOW, SPEED) == []
    assert ledger.load(endpoint(POD, waiting=0, updated_at=NOW), NOW, SPEED).dispatched == 1


def test_requests_the_server_never_reports_expire() -> None:
    ledger = DispatchLedger(lag_s=0.0, expiry_s=5.0)
    ledger.dispatch(POD, NOW, 100, ahead=0)
    # Another client's 3 requests keep the count up: no departure can be inferred ...
    assert ledger.reconcile(endpoint(POD, waiting=3, updated_at=NOW + 1), NOW + 1, SPEED) == []
    # ... until the request is too old to still be waiting.
    assert ledger.reconcile(endpoint(POD, waiting=3, updated_at=NOW + 6), NOW + 6, SPEED) == []
    assert ledger.load(endpoint(POD, updated_at=NOW + 6), NOW + 6, SPEED).queued_tokens == 0


def test_an_unknown_endpoint_is_its_scrape() -> None:
    ledger = DispatchLedger()
    state = endpoint(POD, waiting=2, running=1)
    assert ledger.load(state, NOW, SPEED) == DispatchedLoad(2, 1, 0, 0)
    assert ledger.reconcile(state, NOW, SPEED) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="lag"):
        DispatchLedger(lag_s=-1.0)
