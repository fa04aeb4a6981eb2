"""The REST contract holds under fuzzing: schemathesis reads the live service's ``/openapi.json``
and sends it valid and invalid requests. Every check must pass: no server error, no response
that differs from the documented schema, status or content type, and no request that breaks the
schema accepted. It runs on the service itself (``service/``'s routes, whatever they are), and
once on a route that breaks its promise, to show that the check can fail.

The seed is fixed so that a run repeats; ``CONTRACT_SEED=<n>`` explores other inputs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .conftest import wait_ready
from .test_main import free_port

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def fuzz(service: list[str], workdir: Path) -> tuple[int, dict[str, str], str]:
    """Run ``service`` (a ``python -m`` module and flags) on memory:// and fuzz it: the exit
    status of schemathesis, its JUnit counts and its output."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *service, "--amqp-url", "memory://", "--http-host", "127.0.0.1",
        "--http-port", str(port), "--log-level", "WARNING",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process)
        report = workdir / "contract.xml"
        fuzzer = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/openapi.json",
            "--checks", "all", "--seed", os.environ.get("CONTRACT_SEED", "1"), "--no-color",
            "--generation-database", "none", "--report", "junit",
            "--report-junit-path", str(report),
            cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(fuzzer.communicate(), timeout=300)
        counts = dict(ET.parse(report).getroot().attrib)
        return fuzzer.returncode or 0, counts, out.decode(errors="replace")
    finally:
        process.terminate()
        await process.wait()


async def test_the_service_keeps_its_openapi_contract_under_fuzzing(tmp_path: Path) -> None:
    status, counts, out = await fuzz(["{{ cookiecutter.package }}"], tmp_path)
    assert status == 0, out[-6000:]
    assert counts["failures"] == counts["errors"] == "0", out[-6000:]
    assert int(counts["tests"]) >= 3  # the operations were reached, not skipped


async def test_the_contract_check_catches_a_response_that_breaks_the_schema(
    tmp_path: Path,
) -> None:
    status, counts, out = await fuzz(["tests.harness", "--broken-contract"], tmp_path)
    assert status != 0
    assert int(counts["failures"]) >= 1, out[-6000:]
    assert "GET /squares/{n}" in out
    assert "Response violates schema" in out
