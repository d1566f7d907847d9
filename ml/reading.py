"""Reading the user's Parquet files, with what goes wrong said in their terms.

A file that is not Parquet, or that pyarrow or pandas cannot read, is the
user's DataError, not a traceback; so are two columns of one name (which
Parquet allows and pyarrow then reports with a dump of the whole schema).
A column that the user sees in the file but pandas reads back as the index
is explained where its absence is reported (`index_hint`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.messages import DataError, bounded, name_list

# What pandas/pyarrow raise for a file that is not (valid) Parquet; a corrupt
# page can surface as OSError ("Couldn't deserialize thrift").
_UNREADABLE = (pa.ArrowException, ValueError, OSError)


def read_parquet(path: str | Path, what: str) -> pd.DataFrame:
    """pd.read_parquet, with an unreadable file reported as the user's
    DataError; `what` names the file in it ("training data")."""
    try:
        try:
            df = pd.read_parquet(path)
        except TypeError:
            # The file's pandas metadata names a dtype this pandas cannot
            # rebuild (pandas itself writes such files, e.g. for a list column
            # of ArrowDtype). The data is fine: read it without that metadata.
            df = pd.read_parquet(path, to_pandas_kwargs={"ignore_metadata": True})
    except FileNotFoundError:
        raise  # our file, not the user's data
    except _UNREADABLE as exc:
        # Parquet allows two columns of one name; pyarrow then fails with
        # "Multiple matches for FieldRef" and a dump of the whole schema.
        check_distinct_names(_schema_names(path), what)
        raise _unreadable(what, path, exc) from exc
    check_distinct_names(df.columns, what)  # should pandas ever read them after all
    return df


def check_distinct_names(names, what: str, *, online: bool = False) -> None:
    """DataError naming the names that occur more than once (in its
    `columns` too). `online`: the columns came in a request, not a file."""
    repeated = {name: n for name, n in Counter(names).items() if n > 1}
    if repeated:
        shown = name_list(repeated, describe=lambda name: f"{repeated[name]} times")
        again = "send the rows again" if online else "upload again"
        raise DataError(
            f"{what} has more than one column named {shown}. "
            f"Each column needs its own name: rename or drop the duplicates and {again}.",
            columns=list(repeated),
        )


def index_hint(df: pd.DataFrame, missing: list) -> str:
    """A hint when a missing column is the file's pandas index (written with
    DataFrame.to_parquet(index=True) after set_index): pandas reads it back
    as the index, not as a column."""
    indexed = [name for name in missing if name in set(df.index.names)]
    if not indexed:
        return ""
    return (
        f" ({name_list(indexed)} {'is' if len(indexed) == 1 else 'are'} the file's index: "
        "write the file with index=False after reset_index())"
    )


def _schema_names(path: str | Path) -> list[str]:
    """The column names in a Parquet file's footer; [] if there is none."""
    try:
        return pq.read_schema(path).names
    except _UNREADABLE:
        return []


def _unreadable(what: str, path: str | Path, exc: Exception) -> DataError:
    # pyarrow quotes the local (temporary) path, which means nothing to the
    # user; its reason may quote the whole schema, which the bound cuts.
    reason = bounded(str(exc).replace(f" '{path}'", "").rstrip("."), 1024)
    return DataError(
        f"could not read {what} as Parquet: {reason}. "
        "Upload a valid Parquet file (e.g. written with pandas DataFrame.to_parquet)."
    )
