"""Runs in the new project after cookiecutter rendered it: says what to do next.

Nothing else needs doing after rendering, and nothing here touches the network.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def next_steps(answers: dict[str, Any]) -> str:
    project = answers["project"]
    folder = answers.get("folder", project)  # copier writes where it is told
    return "\n".join(
        [
            f"Created {folder}/: a REST + AMQP + background-task service on one event loop.",
            "",
            "Next steps:",
            f"  cd {folder}",
            "  uv sync",
            f"  uv run {project} --amqp-url memory://     # run it without RabbitMQ",
            "  uv run pytest                     # its tests (AMQP_URL=amqp://... adds RabbitMQ)",
            "",
            "Your code goes in src/" + answers["package"] + "/service/; README.md says how.",
        ]
    )


if __name__ == "__main__":
    print(next_steps(json.loads({{cookiecutter | tojson | tojson}})))  # noqa: F821
    sys.exit(0)
