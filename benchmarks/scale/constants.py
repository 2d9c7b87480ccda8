"""The deployed pipeline's numbers the scale benchmark simulates (one place, read by every part)."""



REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# The deployed configuration (components/regional.py, components/config.py defaults).
FUNCTION_TIMEOUT = 300.0
VISIBILITY_TIMEOUT = FUNCTION_TIMEOUT + 30.0
MAX_RECEIVES = 5
BATCH_SIZE = 10
BATCH_WINDOW = 1.0
MAX_CONCURRENCY = 2
ORGANIZATION_MAX_CONCURRENCY = 10
"""The event queue's maximum concurrency when the deployment covers other accounts
(components/config.py: ORGANIZATION_MAX_CONCURRENCY)."""
SWEEP_INTERVAL = 300.0
# Lambda's asynchronous invocation: two retries, about one and two minutes after the failure.
ASYNC_RETRY_DELAYS = (60.0, 120.0)
TARGET_RATIO = 1.5
"""Done when: the deployed pipeline's makespan is within 1.5x of the bucket bound."""
ACCOUNTS_TARGET_RATIO = 1.3
"""Done when: a burst in several accounts at once stays within 1.3x of one account's bound."""
SOURCES_PER_LARGE_SENSOR = 100
FAILOVER_TARGET_RATIO = 1.3
"""Done when: moving every session off a failed sensor finishes within 1.3x of the bucket bound."""
DEFAULT_MARGIN = 15.0
"""MIRROR_DEADLINE_MARGIN_SECONDS's default (handler/settings.py)."""
