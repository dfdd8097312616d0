"""Request ids the EPP generates for requests that arrive without `x-request-id`."""

from __future__ import annotations

import uuid

from igw.epp.requestpath.headers import new_request_id, read_control_headers


def test_generated_ids_are_canonical_random_uuids() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # lower-case hex, 8-4-4-4-12


def test_an_id_is_generated_only_when_the_client_sent_none() -> None:
    sent = read_control_headers({"x-request-id": "rid-1"})
    assert (sent.request_id, sent.request_id_generated) == ("rid-1", False)
    missing = read_control_headers({})
    assert missing.request_id_generated
    assert uuid.UUID(missing.request_id).version == 4
