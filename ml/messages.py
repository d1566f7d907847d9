"""Messages for users, kept small enough to travel.

A job's error message goes to the user in a NATS message (at most 1 MiB) and
in gRPC replies, and is stored in the job record. Messages are built from the
user's own data (column names, label values), so without a bound a file with
100,000 columns or one very long column name would make a message too large
to send, and the user would get no answer at all. Hence:

- `name_list` abbreviates every list of names a message shows: at most
  `limit` names, each cut to `width` characters, then "… and N more";
- `DataError` caps its own message (`DataError.LIMIT`), so no message can
  exceed it, even one written later without `name_list`;
- `bounded` caps any text the same way; the trainer uses it for internal
  errors and tracebacks.

This module imports nothing heavy: the gateway, scheduler and trainer may
import it without paying for pandas and scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

NAMES_SHOWN = 20  # names a list shows before "… and N more"
NAME_WIDTH = 64  # characters of one name shown before "…"


def bounded(text: str, limit: int = 4096, *, tail: int = 0) -> str:
    """`text` if it fits in `limit` bytes (UTF-8, what NATS and gRPC count);
    otherwise its start, a note saying how many characters were cut, and its
    last `tail` bytes (none by default), together at most `limit` bytes.

    Keeping the end as well suits texts whose end matters: a DataError's
    end says how to fix the data, a traceback's last line names the error.
    """
    text = str(text)
    if (
        len(text) <= limit // 4 or len(text.encode()) <= limit
    ):  # UTF-8 takes at most 4 bytes a character
        return text
    # The note is at its widest when everything is cut; size the budget for that.
    budget = limit - max(len(_cut_note(len(text), middle).encode()) for middle in (False, True))
    if budget <= 0:
        return _first_bytes(text, limit)
    end = _last_bytes(text, min(tail, budget // 2))
    start = _first_bytes(text, budget - len(end.encode()))
    return start + _cut_note(len(text) - len(start) - len(end), bool(end)) + end


def name_list(
    names: Iterable[Any],
    limit: int = NAMES_SHOWN,
    *,
    width: int = NAME_WIDTH,
    describe: Callable[[Any], str] | None = None,
) -> str:
    """ "a, b, c" for a message: at most `limit` names, each cut to `width`
    characters ("…" marks the cut), then "… and N more"; "(none)" if empty.

    A name that would be invisible or ambiguous in such a list (empty,
    leading or trailing spaces, a comma, control characters) is quoted, so
    'y ' is told apart from y. `describe(name)`, if given, is appended to a
    name after cutting it, e.g. "price (str)", so it is never cut away.
    """
    shown, more = [], 0
    for name in names:
        if len(shown) < limit:
            shown.append(_name(name, width) + (f" ({describe(name)})" if describe else ""))
        else:
            more += 1
    if not shown:
        return "(none)"
    return ", ".join(shown) + (f", … and {more:,} more" if more else "")


def quoted(name: Any, width: int = NAME_WIDTH) -> str:
    """One name in a sentence: "'price'", cut to `width` characters like in
    name_list."""
    text = str(name)
    return repr(text if len(text) <= width else text[: max(width - 1, 0)] + "…")


def shown(value: Any) -> str:
    """A value of the user's (a label) in a sentence: its repr, cut like a
    name, so that 1 and '1' are told apart."""
    text = repr(value)
    return text if len(text) <= NAME_WIDTH else text[: NAME_WIDTH - 1] + "…"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 column", "12,345 columns"; `plural` where adding "s" is wrong
    ("classes")."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


class DataError(ValueError):
    """A problem with the user's data. str() is the complete message for the
    user: what is wrong and what to change before uploading again.

    The message is capped at LIMIT bytes here, whoever builds it; the cut
    keeps the start (what is wrong) and the end (how to fix it).

    `columns` names the columns at fault, when the error is about particular
    columns (a missing or mistyped prediction column), so that a server can
    attach one field violation per column; empty otherwise. It is the full
    list, which the message abbreviates: a server that shows it caps it.
    """

    LIMIT = 4096
    KEEP_END = 1024

    def __init__(self, message: str, columns: Iterable[Any] = ()):
        super().__init__(bounded(message, self.LIMIT, tail=self.KEEP_END))
        self.columns: list[str] = [str(name) for name in columns]

    def __reduce__(self):
        # The default rebuilds from args (the message) alone and would lose
        # `columns` on the worker's pipe.
        return type(self), (str(self), self.columns)


def _name(name: Any, width: int) -> str:
    text = str(name)
    plain = text and text == text.strip() and text.isprintable() and "," not in text
    if plain:
        return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
    return quoted(text, width)


def _cut_note(n: int, middle: bool) -> str:
    return f"… [{n:,} characters cut] …" if middle else f"… [{n:,} more characters cut]"


def _first_bytes(text: str, n: int) -> str:
    """The longest start of `text` that is at most `n` bytes in UTF-8."""
    return text.encode()[: max(n, 0)].decode("utf-8", "ignore")


def _last_bytes(text: str, n: int) -> str:
    """The longest end of `text` that is at most `n` bytes in UTF-8."""
    if n <= 0:
        return ""
    return text.encode()[-n:].decode("utf-8", "ignore")
