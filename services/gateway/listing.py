"""List* RPCs: records a page at a time, newest first, filtered.

- Order: (create_time, id), newest first: stable, since neither changes.
- Page tokens are opaque (base64 of the last item's position and the
  filter) and name a position in that order, not an offset: jobs submitted
  while a client pages are newer than every position it holds, so they
  neither shift nor repeat later pages (AIP-158).
- Filters: conjunctions of `field=value` (AIP-160's simplest form), over the
  fields each list names; an unknown field or a malformed term is
  INVALID_ARGUMENT naming `filter` and the fields there are.

Reading (`read_page`): NATS KV has no range scan, but a bucket's keys can
be listed without their values, and record ids begin with their creation
time (services/common/records.py), so key order is list order. A page
without a filter reads the tenant's keys and then only that page's records.
A filtered page, or a tenant with records from before ids were
time-ordered, reads every record of the tenant; the order and the tokens
are the same either way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from google.protobuf.message import Message
from nats.js.kv import KeyValue

from fityard.v1 import jobs_pb2
from services.common import errors
from services.common.jobs import kind_name, state_name
from services.common.records import get_record, id_time, list_records, record_ids

M = TypeVar("M", bound=Message)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Position = tuple[int, int, str]


def _position(record) -> Position:
    return (record.create_time.seconds, record.create_time.nanos, record.id)


def _id_position(record_id: str) -> Position | None:
    """A record's position from its id alone (the create_time a
    time-ordered id carries); None for an id of another shape."""
    created = id_time(record_id)
    return None if created is None else (created.seconds, created.nanos, record_id)


# The values a field can have, where there is a fixed set: a filter on
# another value is a typo that would silently match nothing.
KNOWN_VALUES = {
    "state": [state_name(s) for s in jobs_pb2.JobState.values() if s],
    "kind": [kind_name(k) for k in jobs_pb2.JobKind.values() if k],
}


def parse_filter(text: str, fields: dict[str, Callable]) -> list[tuple[str, str]]:
    """[(field, value)] of "a=1 AND b=2"; INVALID_ARGUMENT naming the problem."""
    if not text.strip():
        return []
    terms = []
    for term in text.split(" AND "):
        name, sep, value = term.strip().partition("=")
        name, value = name.strip(), value.strip().strip('"')
        if not sep or not name or not value:
            raise errors.invalid_argument(
                "filter",
                f"{term.strip()!r} is not a condition; write field=value, joined by ' AND '",
            )
        if "=" in value:
            raise errors.invalid_argument(
                "filter",
                f"{term.strip()!r} holds more than one condition; join them with ' AND ' "
                "(upper case)",
            )
        if name not in fields:
            raise errors.invalid_argument(
                "filter", f"cannot filter on {name!r}; fields: {', '.join(fields)}"
            )
        known = KNOWN_VALUES.get(name)
        if known and value.lower() not in (v.lower() for v in known):
            raise errors.invalid_argument(
                "filter", f"{name} cannot be {value!r}; it is one of {', '.join(known)}"
            )
        terms.append((name, value))
    return terms


def _encode(position: Position, filter_text: str) -> str:
    raw = json.dumps([*position, filter_text], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, filter_text: str) -> Position:
    bad = errors.invalid_argument(
        "page_token", "is not a token this server returned; omit it to start over"
    )
    try:
        seconds, nanos, record_id, token_filter = json.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        )
    except (binascii.Error, ValueError, TypeError):
        raise bad from None
    if not (isinstance(seconds, int) and isinstance(nanos, int) and isinstance(record_id, str)):
        raise bad
    if token_filter != filter_text:
        raise errors.invalid_argument(
            "page_token",
            "was issued for another filter; send the same filter as the first page, or omit the token",
        )
    return seconds, nanos, record_id


def _page_size(page_size: int) -> int:
    if page_size < 0:
        raise errors.invalid_argument(
            "page_size", f"must be 0 (default {DEFAULT_PAGE_SIZE}) or positive, got {page_size}"
        )
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


async def read_page(
    kv: KeyValue,
    tenant: str,
    cls: type[M],
    page_size: int,
    page_token: str,
    filter_text: str,
    fields: dict[str, Callable[[M], str]],
) -> tuple[list[M], str]:
    """`page` of the tenant's records in `kv`, reading only the keys and
    the page's records where it can (no filter, every id time-ordered)."""
    size = _page_size(page_size)
    if not parse_filter(filter_text, fields):
        after = _decode(page_token, filter_text) if page_token else None
        positions = [_id_position(record_id) for record_id in await record_ids(kv, tenant)]
        if None not in positions:
            return await _page_by_keys(kv, tenant, cls, positions, size, after, filter_text)
    records = await list_records(kv, tenant, cls)
    return page(records, page_size, page_token, filter_text, fields)


async def _page_by_keys(
    kv: KeyValue,
    tenant: str,
    cls: type[M],
    positions: list[Position],
    size: int,
    after: Position | None,
    filter_text: str,
) -> tuple[list[M], str]:
    """The records at the first `size` positions after `after`, newest
    first. A key whose record is gone (deleted) is passed over, and the
    next ones read in its place."""
    candidates = sorted((p for p in positions if after is None or p < after), reverse=True)
    items: list[M] = []
    read = 0
    while len(items) < size and read < len(candidates):
        batch = candidates[read : read + size - len(items)]
        read += len(batch)
        found = await asyncio.gather(*(get_record(kv, tenant, p[2], cls) for p in batch))
        items += [f[0] for f in found if f is not None]
    more = read < len(candidates)
    return items, (_encode(candidates[read - 1], filter_text) if more else "")


def page(
    records: Sequence[M],
    page_size: int,
    page_token: str,
    filter_text: str,
    fields: dict[str, Callable[[M], str]],
) -> tuple[list[M], str]:
    """The requested page of `records` and the token of the next one ("" at the end)."""
    size = _page_size(page_size)
    terms = parse_filter(filter_text, fields)
    matching = [
        r for r in records if all(fields[name](r).lower() == value.lower() for name, value in terms)
    ]
    matching.sort(key=_position, reverse=True)
    if page_token:
        after = _decode(page_token, filter_text)
        matching = [r for r in matching if _position(r) < after]
    items = matching[:size]
    more = len(matching) > size
    return items, (_encode(_position(items[-1]), filter_text) if more else "")
