"""Files a job offers for download, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator


def csv_lines(rows: Iterator[list]) -> Iterator[str]:
    """Rows as CSV text, line by line (for a streamed response: constant memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
