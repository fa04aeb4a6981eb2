"""The example's REST API: what it records, and what it does not know."""

from __future__ import annotations

from ..conftest import Client, eventually
from ..test_routes import assert_problem


async def test_recorded_measurement_shows_in_sensor_stats(memory_client: Client) -> None:
    response = await memory_client.post("/measurements", json={"sensor": "t1", "value": 21.5})
    assert response.status == 202
    assert len((await response.json())["id"]) == 36

    async def counted() -> bool:
        stats = await memory_client.get("/sensors/t1")
        return stats.status == 200 and (await stats.json())["count"] == 1

    await eventually(counted)
    listing = await (await memory_client.get("/sensors")).json()
    assert [s["sensor"] for s in listing["sensors"]] == ["t1"]


async def test_unknown_sensor_and_missing_summary_are_404(memory_client: Client) -> None:
    body = await assert_problem(await memory_client.get("/sensors/ghost"), 404)
    assert "ghost" in str(body["detail"])
    await assert_problem(await memory_client.get("/summary"), 404)


async def test_sensors_are_listed_by_prefix_and_limit(memory_client: Client) -> None:
    for sensor in ("boiler-1", "boiler-2", "pump"):
        response = await memory_client.post("/measurements", json={"sensor": sensor, "value": 1})
        assert response.status == 202

    async def listed(query: str) -> list[str]:
        body = await (await memory_client.get(f"/sensors{query}")).json()
        return [s["sensor"] for s in body["sensors"]]

    async def all_counted() -> bool:
        return len(await listed("")) == 3

    await eventually(all_counted)
    assert await listed("?prefix=boiler") == ["boiler-1", "boiler-2"]
    assert await listed("?prefix=boiler&limit=1") == ["boiler-1"]
    await assert_problem(await memory_client.get("/sensors?limit=0"), 422)


async def test_a_sensor_name_outside_the_schema_is_422(memory_client: Client) -> None:
    body = await assert_problem(await memory_client.get("/sensors/a%20b"), 422)
    assert body["errors"][0]["loc"] == ["path", "sensor"]
