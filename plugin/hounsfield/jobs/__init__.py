"""The durable job queue and the worker subprocesses that run heavy work.

Jobs are rows (``queue``); long-lived worker processes claim and run them
(``worker``); the plugin supervises those processes (``supervisor``).
"""

from hounsfield.jobs.context import JobCancelled, JobContext
from hounsfield.jobs.model import Job, JobState
from hounsfield.jobs.queue import DatabaseJobQueue, JobQueue

__all__ = ["DatabaseJobQueue", "Job", "JobCancelled", "JobContext", "JobQueue", "JobState"]
