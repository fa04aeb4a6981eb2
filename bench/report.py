"""The benchmark's results as markdown tables and one PNG chart. Used by ``bench.py``::

print(table(results))
chart(results, Path("bench/results/latest.png"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import DESIGN_CONNECTIONS, REST_CONNECTIONS


def _share(cost: dict[str, float], path: str, cpu_us: float) -> dict[str, float]:
    """What metrics add to one ``path`` (get or delivery), against its CPU time in the service."""
    added = cost[f"{path}_on"] - cost[f"{path}_off"]
    return {"service": added, "reference": cpu_us, "ratio": added / cpu_us}


def table(results: dict[str, Any]) -> str:
    floor = results["import_floor"]
    rows = [
        ("start to ready (s)", results["start_to_ready_s"]),
        (
            "start to ready (s) / import floor (s), difference",
            _difference(results["start_to_ready_s"]["service"], floor["import_s"]),
        ),
        ("idle CPU (% of a core)", results["idle_cpu_percent"]),
        ("idle RSS (MB)", results["idle_rss_mb"]),
        (
            "idle RSS (MB) / import floor (MB), difference",
            _difference(results["idle_rss_mb"]["service"], floor["rss_mb"]),
        ),
        ("REST req/s", _pick(results["rest"], "req_s")),
        (
            "REST req/s / bare aiohttp on uvloop",
            {
                "service": results["rest"]["service"]["req_s"],
                "reference": results["rest_uvloop_reference"]["req_s"],
            },
        ),
        ("REST req/s, 1 connection", _pick(results["rest_one_connection"], "req_s")),
        ("REST POST req/s, validate + confirmed publish", _pick(results["rest_post"], "req_s")),
        ("REST p50 (ms)", _pick(results["rest"], "p50_ms")),
        ("REST p99 (ms)", _pick(results["rest"], "p99_ms")),
        ("REST p50 (ms), 1 connection", _pick(results["rest_one_connection"], "p50_ms")),
        ("consume msg/s, quorum queue", results["consume_msg_s"]),
        ("consume msg/s, classic queue", results["consume_classic_msg_s"]),
        (
            "consume msg/s: FastStream / raw aio-pika",
            {
                "service": results["consume_msg_s"]["faststream"],
                "reference": results["consume_msg_s"]["reference"],
            },
        ),
        ("publish msg/s, confirmed", results["publish_msg_s"]),
        (
            "REST req/s, metrics on / off",
            {
                "service": results["rest_metrics"]["on"],
                "reference": results["rest_metrics"]["off"],
                "ratio": results["rest_metrics"]["ratio"],  # of each pair, not of the medians
            },
        ),
        (
            "metrics' cost per GET (us) / CPU per GET (us)",
            _share(results["metrics_cost_us"], "get", results["rest"]["service"]["cpu_us"]),
        ),
        (
            "metrics' cost per delivery (us) / CPU per delivery (us)",
            _share(
                results["metrics_cost_us"], "delivery", results["consume_msg_s"]["service_cpu_us"]
            ),
        ),
        (
            "consume msg/s, metrics on / off",
            {
                "service": results["consume_msg_s"]["service"],
                "reference": results["consume_msg_s"]["service_metrics_off"],
            },
        ),
        (
            "REST p99 (ms) consuming / idle",
            {k: results["rest_while_consuming"][k]["p99_ms"] for k in ("service", "reference")},
        ),
    ]
    lines = [
        "| figure | service | reference | service / reference |",
        "|---|---:|---:|---:|",
    ]
    for name, pair in rows:
        ratio = f"{pair['service'] / pair['reference']:.2f}" if pair["reference"] else "n/a"
        if "ratio" in pair:
            ratio = f"{pair['ratio']:.3f}"
        if "difference" in pair:
            ratio = f"{pair['difference']:+.3g}"
        lines.append(f"| {name} | {pair['service']:.3g} | {pair['reference']:.3g} | {ratio} |")
    return "\n".join(lines)


def scaling_table(results: dict[str, Any]) -> str:
    """How the service's cost grows: REST with connections, consuming with prefetch, memory
    with deliveries in flight and with the backlog, throughput with replicas."""
    rest = results["rest_scaling"]
    lines = [
        "| connections | service req/s | p99 (ms) | bare aiohttp req/s | p99 (ms) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for c in REST_CONNECTIONS:
        mine, bare = rest["service"][str(c)], rest["reference"][str(c)]
        lines.append(
            f"| {c} | {mine['req_s']:.0f} | {mine['p99_ms']:.2f} | {bare['req_s']:.0f} "
            f"| {bare['p99_ms']:.2f} |"
        )
    consume = results["consume_scaling"]
    lines += [
        "",
        "| consuming | msg/s | deliveries in flight | RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for kind, label in (("prefetch", "prefetch {}"), ("backlog", "backlog of {} messages")):
        for key, f in consume[kind].items():
            lines.append(
                f"| {label.format(key)} | {f['msg_s']:.0f} | {f['in_flight']:.0f} "
                f"| {f['rss_mb']:.1f} |"
            )
    for key, f in consume["replicas"].items():
        lines.append(f"| {key} replica(s), one queue | {f['msg_s']:.0f} | | |")
    return "\n".join(lines)


def _difference(service: float, reference: float) -> dict[str, float]:
    return {"service": service, "reference": reference, "difference": service - reference}


def designs_table(designs: dict[str, dict[str, float]]) -> str:
    lines = [
        "| design | connections | req/s | p99 (ms) | RSS (MB) | threads | processes | msg/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in designs.items():
        for c in DESIGN_CONNECTIONS:
            lines.append(
                f"| {name} | {c} | {f[f'req_s_c{c}']:.0f} | {f[f'p99_ms_c{c}']:.2f} "
                f"| {f[f'rss_mb_c{c}']:.1f} | {f[f'threads_c{c}']:.0f} "
                f"| {f[f'processes_c{c}']:.0f} | {f['msg_s']:.0f} |"
            )
    return "\n".join(lines)


def _pick(pairs: dict[str, dict[str, float]], key: str) -> dict[str, float]:
    return {side: values[key] for side, values in pairs.items()}


def chart(results: dict[str, Any], path: Path) -> None:
    """The figures as one PNG: the ratios to the references, how the service's cost grows with
    connections, prefetch, backlog and replicas, and the four designs side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(2, 4, figsize=(22, 9))
    ratios = {
        "REST req/s\n64 conns": _ratio(_pick(results["rest"], "req_s")),
        "REST req/s\n1 conn": _ratio(_pick(results["rest_one_connection"], "req_s")),
        "REST POST\n+ publish": _ratio(_pick(results["rest_post"], "req_s")),
        "consume\nquorum": _ratio(results["consume_msg_s"]),
        "consume\nclassic": _ratio(results["consume_classic_msg_s"]),
        "publish": _ratio(results["publish_msg_s"]),
    }
    ratio_panel = panels[0][0]
    ratio_panel.bar(list(ratios), list(ratios.values()), color="#4878a8")
    ratio_panel.axhline(1.0, color="black", linewidth=0.8)
    ratio_panel.set_title("service / reference (bare aiohttp, raw aio-pika)")
    ratio_panel.tick_params(axis="x", labelsize=8)

    rest_panel = panels[0][1]
    for side, style in (("service", "o-"), ("reference", "s--")):
        runs = results["rest_scaling"][side]
        rest_panel.plot(REST_CONNECTIONS, [runs[str(c)]["req_s"] for c in REST_CONNECTIONS], style)
    rest_panel.set_xscale("log")
    rest_panel.set_title("REST req/s (lines) and p99 ms (bars) by connections")
    rest_panel.legend(["service", "bare aiohttp"], fontsize=8)
    p99 = rest_panel.twinx()
    p99.bar(
        REST_CONNECTIONS,
        [results["rest_scaling"]["service"][str(c)]["p99_ms"] for c in REST_CONNECTIONS],
        width=[c * 0.3 for c in REST_CONNECTIONS],
        alpha=0.25,
        color="#c44e52",
    )

    consume = results["consume_scaling"]
    prefetch = [int(key) for key in consume["prefetch"]]
    prefetch_panel = panels[0][2]
    prefetch_panel.plot(prefetch, [f["msg_s"] for f in consume["prefetch"].values()], "o-")
    prefetch_panel.set_xscale("log")
    prefetch_panel.set_title("consume msg/s by prefetch")

    replicas_panel = panels[0][3]
    replicas = consume["replicas"]
    replicas_panel.bar(
        [f"{key} replica(s)" for key in replicas], [f["msg_s"] for f in replicas.values()]
    )
    replicas_panel.set_title("consume msg/s, competing replicas on one queue")

    memory_panel = panels[1][0]
    bound, backlog = consume["prefetch"], consume["backlog"]
    memory_panel.plot(
        [int(prefetch) for prefetch in bound],
        [f["rss_mb"] for f in bound.values()],
        "o-",
        label="prefetch: the bound on deliveries in flight",
    )
    memory_panel.plot(
        [int(depth) for depth in backlog],
        [f["rss_mb"] for f in backlog.values()],
        "s--",
        label="backlog waiting in the queue",
    )
    memory_panel.set_xscale("log")
    memory_panel.set_ylim(bottom=0)
    memory_panel.set_title("service RSS (MB) by messages")
    memory_panel.legend(fontsize=8)

    designs = results["designs"]
    for name, f in designs.items():
        panels[1][1].plot(
            DESIGN_CONNECTIONS, [f[f"req_s_c{c}"] for c in DESIGN_CONNECTIONS], "o-", label=name
        )
        panels[1][2].plot(
            DESIGN_CONNECTIONS, [f[f"rss_mb_c{c}"] for c in DESIGN_CONNECTIONS], "o-", label=name
        )
    for panel, title in (
        (panels[1][1], "designs: req/s by connections"),
        (panels[1][2], "designs: RSS (MB) by connections"),
    ):
        panel.set_xscale("log")
        panel.set_title(title)
        panel.legend(fontsize=8)
    panels[1][2].set_ylim(bottom=0)
    panels[1][3].bar(list(designs), [f["msg_s"] for f in designs.values()], color="#55a868")
    panels[1][3].set_title("designs: consume msg/s, the same handler")
    panels[1][3].tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def _ratio(pair: dict[str, float]) -> float:
    return pair["service"] / pair["reference"] if pair["reference"] else 0.0
