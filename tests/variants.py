"""The answers the template's tests render: the defaults, then each non-default value once."""

from __future__ import annotations

from typing import Any

# Quotes, backslashes, triple quotes and non-ASCII: answers are data, never code.
AWKWARD = 'Orders for the "café" naïve \\ back-slashed, it\'s """ triple-quoted — ñ ✓'

# The longest names the hook accepts, so the full checks prove no generated line gets too long.
CUSTOM: dict[str, Any] = {
    "name": "Órdenes Desk of the Big Warehouse on the Harbour, Second Floor, Room 206 & Annex B",
    "project": "order-desk-for-the-big-warehouse",
    "package": "orders_of_the_big_warehouse_desk",
    "description": AWKWARD,
    "author": 'Zoë "Z" O\'Brien \\ Ltd',
    "email": "zoe@example.org",
    "http_port": "9090",
    "exchange": "shop.events.of.the.big.warehouse.on.the.harbour.second.floor.42",
}

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "custom": CUSTOM,
    "python-3.12": {"python_version": "3.12"},
    "python-3.13": {"python_version": "3.13"},
    "python-3.14": {"python_version": "3.14"},
}
