"""Topic patterns, matched the way a RabbitMQ topic exchange matches them: words split by
dots, ``*`` for exactly one word, ``#`` for zero or more. The in-process broker routes by these
rules, and the dispatcher finds a message's handler by them. Example use::

    topic_matches("sensor.*.alert", "sensor.boiler.alert")  # True
    topic_matches("sensor.#", "sensor")  # True
"""

from __future__ import annotations

import functools


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether ``routing_key`` matches ``pattern`` the way a RabbitMQ topic exchange decides."""
    return _words_match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


@functools.lru_cache(maxsize=4096)
def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return head in ("*", words[0]) and _words_match(rest, words[1:])


def check_pattern(pattern: str) -> None:
    """Refuse a pattern RabbitMQ would take but no routing key could match as meant."""
    if not pattern or any(not word for word in pattern.split(".")):
        raise ValueError(f"routing-key pattern {pattern!r} has an empty word")
