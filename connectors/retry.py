"""The one retry policy for calls to outside systems (feature store, Kinesis): exponential backoff with
full jitter, a cap on attempts and on the total wait, and an error at the end that says what failed."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_AWS_CODES = frozenset(
    {
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class RetriesExhausted(RuntimeError):
    """A call that kept failing with retryable errors until the policy's limits."""


def is_retryable_aws_error(error: BaseException) -> bool:
    """5xx, throttling and connection errors are worth another try; validation errors are not."""
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.response.get("Error", {}).get("Code") in RETRYABLE_AWS_CODES or status >= 500 or status == 429
    return False


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_delay_s: float = 0.05
    max_delay_s: float = 5.0
    total_timeout_s: float = 120.0

    def call(
        self,
        what: str,
        operation: Callable[[], T],
        is_retryable: Callable[[BaseException], bool] = is_retryable_aws_error,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
    ) -> T:
        """Run ``operation``; retry what ``is_retryable`` accepts; raise RetriesExhausted naming ``what``.
        Non-retryable errors propagate unchanged."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation()
            except Exception as error:  # noqa: BLE001 - classified just below
                if not is_retryable(error):
                    raise
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)) * random.random()
                if attempt >= self.max_attempts or time.monotonic() + delay > started + self.total_timeout_s:
                    raise RetriesExhausted(
                        f"{what} failed after {attempt} attempts over {time.monotonic() - started:.1f}s: {error}"
                    ) from error
                log.warning("%s failed (%s); retry %d in %.2fs", what, error, attempt, delay)
                if on_retry:
                    on_retry()
                sleep(delay)
