"""The prefix index: reverse map kept consistent with each endpoint's LRU."""

from igw.epp.scheduling.plugins._prefix_index import PrefixIndex


def test_match_walks_until_a_hash_nobody_holds() -> None:
    index = PrefixIndex()
    index.add("a", [1, 2, 3], 10)
    index.add("b", [1, 2], 10)
    assert index.match([1, 2, 3, 4]) == {"a": 3, "b": 2}
    assert index.match([9, 1]) == {}


def test_re_adding_refreshes_recency() -> None:
    index = PrefixIndex()
    index.add("a", [1, 2], 2)
    index.add("a", [1], 2)  # 1 becomes most recent
    index.add("a", [3], 2)  # evicts 2
    assert index.endpoint_hashes("a") == [1, 3]
    assert index.match([2]) == {}
    assert len(index) == 2


def test_purge_forgets_gone_endpoints() -> None:
    index = PrefixIndex()
    index.add("a", [1], 5)
    index.add("b", [1, 2], 5)
    index.purge({"a"})
    assert index.match([1, 2]) == {"a": 1}
    assert len(index) == 1
