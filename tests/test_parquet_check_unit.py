"""The upload checker (services/gateway/parquet_check.py), fed chunks as an
upload streams them, without a server: what is accepted and read, and what
is refused, when, and with which field and words.

The same refusals through a stack (nothing kept in the store):
tests/test_uploads.py."""

from __future__ import annotations

import hashlib
import io
import struct

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.rpc import error_details_pb2

from services.common import errors
from services.gateway.parquet_check import (
    MAX_COLUMN_NAME_CHARS,
    MAX_FOOTER_BYTES,
    MAX_SCHEMA_BYTES,
    ParquetChecker,
)

LIMIT = 1 << 30


def parquet(table: pa.Table | None = None) -> bytes:
    if table is None:
        table = pa.table({"col_0": [0.5, 1.5, 2.5], "label": ["a", "b", "a"], "y": [0, 1, 0]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def check(data: bytes, size: int = 1 << 20, **kwargs) -> ParquetChecker:
    """Feed `data` in chunks of `size` and finish, as an upload does."""
    checker = ParquetChecker(max_bytes=kwargs.pop("max_bytes", LIMIT), **kwargs)
    for chunk in chunks(data, size):
        checker.feed(chunk)
    checker.finish()
    return checker


def refused(data: bytes, size: int = 1 << 20, **kwargs) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as raised:
        check(data, size, **kwargs)
    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    return error


def field_of(error: errors.ApiError) -> str:
    (detail,) = error.details
    assert isinstance(detail, error_details_pb2.BadRequest)
    (violation,) = detail.field_violations
    assert error.message.startswith(f"{violation.field}: ")
    return violation.field


# -- accepted --------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 7, 4096, 1 << 20])
def test_a_parquet_file_is_read_whatever_the_chunk_size(size):
    checker = check(parquet(), size)
    assert checker.rows == 3
    assert [(c.name, c.type) for c in checker.columns] == [
        ("col_0", "double"),
        ("label", "string"),
        ("y", "int64"),
    ]
    assert checker.size == len(parquet())


def test_the_announced_size_and_hash_are_checked_and_either_case_of_hex_accepted():
    data = parquet()
    digest = hashlib.sha256(data).hexdigest()
    assert check(data, 100, expected_size=len(data), expected_sha256=digest).rows == 3
    assert check(data, 100, expected_sha256=digest.upper()).rows == 3


def test_an_empty_table_is_still_parquet():
    empty = pa.table({"col_0": pa.array([], pa.float64())})
    checker = check(parquet(empty))
    assert (checker.rows, [c.name for c in checker.columns]) == (0, ["col_0"])


# -- not Parquet -----------------------------------------------------------------


def test_a_csv_file_is_refused_at_its_first_chunk_saying_what_to_upload():
    checker = ParquetChecker(max_bytes=LIMIT)
    with pytest.raises(errors.ApiError) as raised:
        checker.feed(b"col_0,y\n1.0,1\n")  # the upload stops here, not at the end
    error = raised.value
    assert field_of(error) == "chunk"
    assert (
        "not Parquet" in error.message and "does not start with the Parquet magic" in error.message
    )
    assert "df.to_parquet('data.parquet')" in error.message


def test_the_magic_split_over_chunks_is_still_checked():
    checker = ParquetChecker(max_bytes=LIMIT)
    checker.feed(b"PA")
    with pytest.raises(errors.ApiError, match="does not start with the Parquet magic"):
        checker.feed(b"RX and more")


@pytest.mark.parametrize(
    "data, says",
    [
        (b"", "it is only 0 bytes long"),
        (b"PAR1", "it is only 4 bytes long"),
        (b"PAR1" + b"\0" * 20, "does not end with the Parquet magic bytes PAR1"),
        (b"PAR1" + b"\0" * 4 + struct.pack("<I", 1000) + b"PAR1", "footer length points outside"),
        (b"PAR1" + b"garbage!" + struct.pack("<I", 8) + b"PAR1", "footer cannot be read"),
    ],
)
def test_a_file_that_only_looks_like_parquet_is_refused_saying_why(data, says):
    error = refused(data)
    assert field_of(error) == "chunk"
    assert "the uploaded file is not Parquet" in error.message and says in error.message


def test_a_truncated_parquet_file_is_refused():
    data = parquet()
    error = refused(data[:-10], 64)
    assert field_of(error) == "chunk" and "truncated or not Parquet" in error.message


def test_a_footer_over_the_limit_is_refused_naming_the_limit():
    data = b"PAR1" + b"\0" * 8 + struct.pack("<I", MAX_FOOTER_BYTES + 1) + b"PAR1"
    error = refused(data)
    assert field_of(error) == "chunk"
    assert f"over the limit of {MAX_FOOTER_BYTES}" in error.message


# -- sizes and hashes ------------------------------------------------------------


def test_an_upload_over_the_limit_is_refused_at_the_chunk_that_crosses_it():
    checker = ParquetChecker(max_bytes=10)
    checker.feed(b"PAR1" + b"\0" * 6)  # exactly the limit: fine
    with pytest.raises(errors.ApiError) as raised:
        checker.feed(b"\0")
    assert field_of(raised.value) == "chunk"
    assert "limit of 10 bytes (FITYARD_MAX_UPLOAD_BYTES)" in raised.value.message


def test_more_bytes_than_announced_are_refused_as_they_arrive():
    data = parquet()
    checker = ParquetChecker(max_bytes=LIMIT, expected_size=10)
    checker.feed(data[:10])
    with pytest.raises(errors.ApiError) as raised:
        checker.feed(data[10:11])
    assert field_of(raised.value) == "header.size_bytes"
    assert "announced 10 bytes but more were sent" in raised.value.message


def test_fewer_bytes_than_announced_are_refused_as_cut_short():
    data = parquet()
    error = refused(data, expected_size=len(data) + 1)
    assert field_of(error) == "header.size_bytes"
    assert f"but {len(data)} arrived; the upload was cut short" in error.message


def test_a_hash_mismatch_is_refused_showing_both_hashes():
    data = parquet()
    wrong = hashlib.sha256(b"other").hexdigest()
    error = refused(data, expected_sha256=wrong)
    assert field_of(error) == "header.sha256"
    assert hashlib.sha256(data).hexdigest() in error.message and wrong in error.message


# -- schemas a record cannot hold ------------------------------------------------


def test_a_column_name_too_long_is_refused_naming_the_column_not_quoting_it_whole():
    name = "x" * (MAX_COLUMN_NAME_CHARS + 1)
    error = refused(parquet(pa.table({"ok": [1], name: [2]})))
    assert field_of(error) == "chunk"
    assert f"column 1 has a name of {MAX_COLUMN_NAME_CHARS + 1:,} characters" in error.message
    assert f"at most {MAX_COLUMN_NAME_CHARS:,}" in error.message
    assert len(error.message) < 400  # the name itself is cut to its start


def test_a_name_at_the_limit_is_accepted():
    name = "x" * MAX_COLUMN_NAME_CHARS
    assert [c.name for c in check(parquet(pa.table({name: [1]}))).columns] == [name]


def test_a_schema_too_large_for_a_record_is_refused_saying_what_to_do():
    columns = MAX_SCHEMA_BYTES // 1000 + 1
    table = pa.table({f"{i:04d}" + "c" * 996: [0] for i in range(columns)})
    error = refused(parquet(table))
    assert field_of(error) == "chunk"
    assert f"the file's {columns:,} column names and types take" in error.message
    assert f"over the limit of {MAX_SCHEMA_BYTES:,}" in error.message
    assert "upload fewer columns (or shorter names)" in error.message
