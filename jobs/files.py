"""Files a job offers for download, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.http import StreamingHttpResponse

from jobs.kinds import KINDS
from jobs.models import Job


def csv_lines(rows: Iterator[list]) -> Iterator[str]:
    """Rows as CSV text, line by line (for a streamed response: constant memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def error_file_response(job: Job) -> StreamingHttpResponse | None:
    """The job's error file as a streamed CSV download, or None for a kind without one. Streamed
    after the request's transaction has ended: a kind's `error_rows` opens its own, in the org."""
    kind = KINDS.get(job.kind)
    if kind is None or kind.error_rows is None:
        return None
    response = StreamingHttpResponse(csv_lines(kind.error_rows(job)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-errors.csv"'
    return response
