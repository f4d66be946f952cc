"""The rank helpers on a single process (no process group): the identity, so the 1-rank learner in
the driver runs the same code as N ranks; a global list that does not split evenly is an error."""

from __future__ import annotations

import pytest

from rlcoder.learn import dist


def test_single_process_is_rank_zero_of_one():
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    assert dist.sum_floats([1.5, 2]) == [1.5, 2.0]
    assert dist.sum_dict({"b": 2.0, "a": 1.0}) == {"a": 1.0, "b": 2.0}
    assert dist.gather_to_main({"x": 1}) == [{"x": 1}]
    assert dist.broadcast_from_main("ckpt") == "ckpt"
    assert dist.local_slice([1, 2, 3]) == [1, 2, 3]
    dist.barrier()


def test_local_slice_needs_an_even_split(monkeypatch):
    monkeypatch.setattr(dist, "world_size", lambda: 2)
    monkeypatch.setattr(dist, "rank", lambda: 1)
    assert dist.local_slice([1, 2, 3, 4]) == [3, 4]
    with pytest.raises(ValueError, match="3 items do not split over 2 ranks"):
        dist.local_slice([1, 2, 3])
