"""KerasTuner's errors (``kt.errors``): raised in ``build``, ``fit`` or ``run_trial`` to fail a
trial without retrying it, or to stop the search."""

from __future__ import annotations


class FailedTrialError(Exception):
    """Fails the trial at once: recorded as FAIL with the message, not retried (whatever
    ``max_retries_per_trial`` says), and the search goes on."""


class FatalError(RuntimeError):
    """A mistake in the tuning set-up that every trial would repeat: the trial is recorded as
    FAIL with the message and the search stops, raising it."""


class FatalValueError(FatalError, ValueError):
    """A :class:`FatalError` that is a ``ValueError``."""


class FatalTypeError(FatalError, TypeError):
    """A :class:`FatalError` that is a ``TypeError``."""


class FatalRuntimeError(FatalError, RuntimeError):
    """A :class:`FatalError` that is a ``RuntimeError``."""
