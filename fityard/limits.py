"""Limits the SDK and the services must agree on, defined once.

The services import this module too (they already import `fityard.v1` for
the generated code), so a client and the gateway can never disagree about
how large one gRPC message may be.
"""

from __future__ import annotations

# The largest gRPC message, in bytes, either side sends or accepts: the
# gateway's and the other services' servers (services/common/runtime.py),
# the gateway's channel to the scheduler, and the SDK's channel. Upload
# chunks must stay under it with room for framing: the SDK sends 1 MiB
# chunks (UPLOAD_CHUNK_BYTES) and the gateway streams 1 MiB from the store.
# A larger message is refused by gRPC itself with RESOURCE_EXHAUSTED
# "Received message larger than max (<size> vs. 16777216)".
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# What the SDK puts in one upload message.
UPLOAD_CHUNK_BYTES = 1024 * 1024
