"""The benchmark runs end to end and writes every figure. A smoke run on tiny settings: it
checks that each measurement happened, never how fast (figures belong in the README, not in
asserts)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import TEMPLATE, Broker, run


def test_bench_writes_every_figure_and_the_chart(rabbitmq: Broker, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    run(
        TEMPLATE,
        "bash", "bench/run", "--idle", "1", "--duration", "1", "--messages", "300",
        "--repeat", "1", "--output", str(output),
        env={"AMQP_URL": rabbitmq.url},
        timeout=900,
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert {"cores", "python", "aiohttp", "aio-pika"} <= set(report["machine"])
    results = report["results"]
    for pair in (
        results["start_to_ready_s"],
        results["idle_rss_mb"],
        results["consume_msg_s"],
        results["publish_msg_s"],
    ):
        assert pair["service"] > 0 and pair["reference"] > 0
    assert results["import_floor"]["import_s"] > 0 and results["import_floor"]["rss_mb"] > 0
    assert results["rest_uvloop_reference"]["req_s"] > 0
    for side in ("service", "reference"):  # every POST validated and published: 202
        assert results["rest_post"][side]["req_s"] > 0
        assert results["rest_post"][side]["not_2xx"] == 0
    assert results["consume_msg_s"]["faststream"] > 0
    assert results["consume_msg_s"]["service_metrics_off"] > 0
    assert min(results["rest_metrics"]["on_runs"] + results["rest_metrics"]["off_runs"]) > 0
    for side in ("service", "reference"):
        assert results["rest_one_connection"][side]["req_s"] > 0
        assert results["rest"][side]["req_s"] > 0
        assert results["rest"][side]["p99_ms"] >= results["rest"][side]["p50_ms"] > 0
    assert set(results["designs"]) == {
        "generated service", "one loop, no runtime", "threads", "processes",
    }  # fmt: skip
    for figures in results["designs"].values():
        assert figures["msg_s"] > 0
        for connections in (1, 64, 256, 1000):
            assert figures[f"req_s_c{connections}"] > 0 and figures[f"rss_mb_c{connections}"] > 0
            assert figures[f"threads_c{connections}"] >= 1
    assert results["designs"]["threads"]["threads_c64"] > 64  # a thread per connection
    assert results["consume_classic_msg_s"]["service"] > 0
    assert results["consume_classic_msg_s"]["reference"] > 0
    scaling = results["consume_scaling"]
    assert set(scaling["prefetch"]) == {"1", "10", "100", "1000"}
    assert set(scaling["replicas"]) == {"1", "2"}
    for figures in [*scaling["prefetch"].values(), *scaling["backlog"].values()]:
        assert figures["msg_s"] > 0 and figures["rss_mb"] > 0 and figures["in_flight"] >= 0
    for side in ("service", "reference"):
        assert set(results["rest_scaling"][side]) == {"1", "8", "64", "256"}
    assert output.with_suffix(".png").stat().st_size > 10_000


def test_the_cluster_bench_drains_with_each_number_of_replicas(
    rabbitmq: Broker, tmp_path: Path
) -> None:
    # rabbitmq: the session's node is up first, so the cluster shares its epmd.
    output = tmp_path / "cluster.json"
    run(
        TEMPLATE,
        "bash", "bench/run", "cluster", "--messages", "300", "--repeat", "1",
        "--output", str(output),
        timeout=900,
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert report["messages"] == 300
    assert set(report["msg_s"]) == {"reference", "1", "2", "3"}
    assert all(rate > 0 for rate in report["msg_s"].values())
