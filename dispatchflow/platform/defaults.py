"""Every tunable of the platform, named once, with what it means and its unit.

Environment overrides are read in :mod:`dispatchflow.platform.config`.
"""

#: Folder for the embedded default's SQLite file, secret key and uploads.
HOME_DIR = ".dispatchflow"

#: SQLite file name inside HOME_DIR (embedded default database).
SQLITE_FILE = "dispatchflow.db"

#: Largest accepted upload (photos, signatures, CSV, e-mails), in megabytes.
MAX_UPLOAD_MB = 10.0

#: Largest accepted JSON request body, in kilobytes.
MAX_JSON_KB = 512

#: Default and largest page size of list endpoints, in records.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

#: Longest ``?filter=`` condition a list request may carry, in characters.
MAX_FILTER_LENGTH = 2000

#: Lifetime of a customer tracking link, in days.
TRACKING_LINK_DAYS = 30

#: Lifetime of an API token when none is given, in days (0 = no expiry).
TOKEN_DAYS = 365

#: Length of generated API tokens, in random bytes (base64url encoded).
TOKEN_BYTES = 32

#: Password hashing method for werkzeug.security.generate_password_hash.
PASSWORD_HASH_METHOD = "scrypt"

#: Maximum length of string fields without an explicit max_length, in characters.
DEFAULT_STRING_LENGTH = 255

# ---------------------------------------------------------------- events, jobs, timers

#: How often RQ retries a failed job at once (the sweeper retries later ones).
JOB_RETRIES = 3

#: How long RQ keeps a finished job's result / a failed job, in seconds (results are
#: never read: the database holds what a job did).
JOB_RESULT_TTL = 0
JOB_FAILURE_TTL = 7 * 24 * 3600

#: Failures after which an outbox event is parked (listed by `dispatchflow jobs failed`).
EVENT_MAX_ATTEMPTS = 5

#: Events of one record processed in one transaction (one lock, one commit).
EVENTS_PER_TRANSACTION = 20

#: Records an RQ drain job takes per round, how many of one entity share a transaction,
#: and how long the job runs before handing over.
DRAIN_RECORDS = 50
RECORDS_PER_TRANSACTION = 10
#: Rounds in a row a drain job skips a record that another transaction holds before it
#: waits for the record, and the pause (seconds) before a round whose records are all
#: held.
DRAIN_SKIPS = 3
DRAIN_PAUSE = 0.005
DRAIN_SECONDS = 10.0

#: Seconds a worker keeps using the active app version before checking for a new one.
VERSION_CHECK_SECONDS = 1.0

#: Events one chain may emit before the runner stops it (rules or flows that loop).
MAX_EVENT_DEPTH = 50

#: Seconds an unprocessed outbox event may wait before the sweeper re-enqueues it.
SWEEP_AFTER_SECONDS = 30.0

#: Seconds between two scheduler ticks (due timers, sweeper, due notifications).
SCHEDULER_INTERVAL_SECONDS = 1.0

#: Timers fired, or events swept, in one scheduler transaction.
SCHEDULER_BATCH = 500

#: Depth to which references are expanded into nested records for rules
#: (``work_order.customer.tier`` needs 1).
FACTS_DEPTH = 2

# ---------------------------------------------------------------- notifications

#: Waits before retrying a failed notification delivery, in seconds (the last one repeats).
NOTIFY_RETRY_BACKOFF = (30, 120, 600, 3600)

#: Delivery attempts (the first included) before a notification is marked failed.
NOTIFY_MAX_ATTEMPTS = 5

#: Seconds a claimed delivery may stay "sending" before another worker may take it over.
NOTIFY_SEND_LEASE_SECONDS = 300

#: Largest notification template (one subject or body, one locale), in characters.
NOTIFY_TEMPLATE_MAX_CHARS = 16_000

#: Largest rendered text, and largest string or list a template may build, in characters/items.
NOTIFY_OUTPUT_MAX_CHARS = 64_000

#: Time limit of one template rendering, in seconds of the rendering thread's CPU time.
NOTIFY_RENDER_TIMEOUT = 1.0

#: Timeout of one webhook POST, in seconds.
NOTIFY_WEBHOOK_TIMEOUT = 10.0

#: Timeout of each step of one SMTP conversation, in seconds.
NOTIFY_SMTP_TIMEOUT = 30.0

#: Messages listed one by one in a digest (more are counted, not listed).
NOTIFY_DIGEST_MAX_ITEMS = 50

#: Deliveries returned by one ``notify.due()`` call (one scheduler tick).
NOTIFY_DUE_BATCH = 500

#: Days of recent work candidate profiles (30-day rating, handling time) are computed over.
PROFILE_WINDOW_DAYS = 30

#: Lowest rating (1-5) that counts as positive in a candidate's 30-day rating.
GOOD_RATING = 4
