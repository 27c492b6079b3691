"""Outcomes a job's step raises to end the job (jobs.runner turns them into its status)."""


class JobCancelled(Exception):
    """A cancel was asked: the job ends `cancelled` after its last committed step."""


class JobSuperseded(Exception):
    """Another worker took this job over (this one was taken for dead): stop without a trace."""


class JobFailed(Exception):
    """The job cannot go on (a file over the limits, its creator no longer a member): it ends
    `failed` with this message; what earlier steps committed stays (and can be undone)."""

    def __init__(self, message: str, code: str = "job_failed"):
        super().__init__(message)
        self.message = message
        self.code = code
