"""Ingestion limits. Each is named in the rejection or 413 that enforces it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_BODY_BYTES = 32 * 1024 * 1024  # one REST batch or OTLP request, after decompression
MAX_EVENTS_PER_BATCH = 5000
MAX_ID_LENGTH = 128
MAX_JSON_DEPTH = 64  # nesting of input, output, metadata, attributes
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # input or output of one trace or span, as JSON
# Span attributes, as JSON. OTLP spans keep their message content there too (the
# original gen_ai.* / llm.* attributes), so the cap matches the payload cap.
MAX_ATTRIBUTES_BYTES = 4 * 1024 * 1024
MAX_METADATA_BYTES = 256 * 1024  # trace, score or feedback metadata, as JSON
MAX_TAGS = 64
MAX_TAG_LENGTH = 128
MAX_TOKENS = 10**12  # per span; anything larger is a client bug
MAX_COST = 10**9  # per span, in the project's currency (cost column: 18 digits, 8 decimals)

# Timestamps before the Unix epoch or more than a day ahead of the server clock are
# client bugs (unset clocks, nanoseconds sent as seconds), not data.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)

# Text columns, by length.
MAX_NAME_LENGTH = 512
MAX_MODEL_LENGTH = 256
MAX_PROVIDER_LENGTH = 128
MAX_USER_ID_LENGTH = 256
MAX_ENVIRONMENT_LENGTH = 64
MAX_RELEASE_LENGTH = 128
MAX_LABEL_LENGTH = 256
MAX_SOURCE_VERSION_LENGTH = 128
MAX_ERROR_MESSAGE_LENGTH = 64 * 1024
MAX_TEXT_LENGTH = 64 * 1024  # rationale, feedback comment
