"""The gateway's metrics: bytes moved and transfers in progress.

Counted as the bytes cross (per chunk), so a long upload shows its rate
while it runs, not only when it ends. Bytes of a transfer that is then
refused (a file that is not Parquet) or cut off still crossed, and count.
The RPCs themselves are counted for every service in
services/common/metrics.py.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

UPLOAD = "upload"
DOWNLOAD = "download"

TRANSFER_BYTES = Counter(
    "fityard_transfer_bytes",
    "Bytes received from uploads (upload) and sent by downloads (download).",
    ["direction"],
)
TRANSFERS_ACTIVE = Gauge(
    "fityard_transfers_active",
    "Uploads and downloads in progress (at most FITYARD_MAX_TRANSFERS in all).",
    ["direction"],
)
TRANSFERS_REFUSED = Counter(
    "fityard_transfers_refused",
    "Transfers refused with RESOURCE_EXHAUSTED because FITYARD_MAX_TRANSFERS were in progress.",
    ["direction"],
)
for _direction in (UPLOAD, DOWNLOAD):  # every series from the start, at 0
    TRANSFER_BYTES.labels(_direction)
    TRANSFERS_ACTIVE.labels(_direction)
    TRANSFERS_REFUSED.labels(_direction)
