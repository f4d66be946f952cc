"""Prometheus exposition of the service metrics."""

from __future__ import annotations

from reward.service.metrics import Metrics


def test_render_has_counters_gauges_and_cumulative_histograms():
    m = Metrics()
    m.item_done("pass", 0.004, cached=False)
    m.item_done("fail", 0.2, cached=False)
    m.item_done("pass", 0.0, cached=True)
    m.request_done(200, 0.3)
    m.reject("queue_full")
    text = m.render(in_flight=5, workers=2, restarts=1, alive=True)
    lines = text.splitlines()
    assert 'reward_items_total{status="pass"} 2' in lines
    assert 'reward_rejected_total{reason="queue_full"} 1' in lines
    assert "reward_cache_hits_total 1" in lines
    assert "reward_queue_depth 5" in lines and "reward_forkserver_up 1" in lines
    buckets = [
        int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("reward_execution_seconds_bucket")
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cached items are not executions
    assert 'reward_execution_seconds_bucket{le="0.005"} 1' in lines
    assert m.throughput() > 0


def test_items_are_counted_by_the_judge_that_decided():
    m = Metrics()
    m.item_done("pass", 0.004, cached=False, judge="isolated")
    m.item_done("fail", 0.004, cached=False, judge="isolated")
    m.item_done("pass", 0.3, cached=False, judge="pytest")
    m.item_done("bad_test", 0.0, cached=False)  # decided before any judge ran
    lines = m.render(in_flight=0, workers=2, restarts=0, alive=True).splitlines()
    assert 'reward_judged_total{judge="isolated"} 2' in lines
    assert 'reward_judged_total{judge="pytest"} 1' in lines
    assert not any(line.startswith('reward_judged_total{judge=""') for line in lines)
    assert 'reward_items_total{status="bad_test"} 1' in lines
