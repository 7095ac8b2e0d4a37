"""How the dispatcher cuts released ids into send tasks."""

from __future__ import annotations

import pytest

from distribution.dispatcher import SEND_BATCH, SEND_BATCH_MAX, SEND_TASKS_PER_TICK, send_batches


@pytest.mark.parametrize("count", [0, 1, 99, 100, 101, 300, 799, 800, 801, 1000, 3999, 4001,
                                   10_000, 25_001])
def test_every_id_once_in_order_in_even_batches(count):
    ids = list(range(1000, 1000 + count))
    batches = send_batches(ids)

    assert [i for batch in batches for i in batch] == ids
    sizes = [len(batch) for batch in batches]
    assert all(size <= SEND_BATCH_MAX for size in sizes)
    if count:
        assert max(sizes) - min(sizes) <= max(sizes) // 10 + 1  # nearly equal


def test_few_ids_keep_the_small_batches_many_get_larger_ones():
    assert [len(b) for b in send_batches(list(range(300)))] == [SEND_BATCH] * 3
    # Enough for every worker: at least SEND_TASKS_PER_TICK tasks, each under the cap.
    many = send_batches(list(range(2000)))
    assert len(many) == SEND_TASKS_PER_TICK and len(many[0]) == 2000 // SEND_TASKS_PER_TICK
    assert [len(b) for b in send_batches(list(range(10_000)))] == [SEND_BATCH_MAX] * 20


def test_a_given_batch_size_is_kept():
    assert [len(b) for b in send_batches(list(range(14)), 3)] == [3, 3, 3, 3, 2]
    assert [len(b) for b in send_batches(list(range(1200)), 100)] == [100] * 12
