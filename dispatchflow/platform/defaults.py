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

#: Longest a list query (``?filter=``, sort, page) may run before it is stopped, in seconds.
LIST_QUERY_TIMEOUT = 5.0

#: SQLite: how many virtual-machine steps run between two checks of a query's deadline.
SQLITE_DEADLINE_CHECK_STEPS = 1000
#: Longest ``?filter=`` condition a list request may carry, in characters.
MAX_FILTER_LENGTH = 2000

#: Lifetime of a customer tracking link, in days.
TRACKING_LINK_DAYS = 30

#: How long a tracking link keeps working after its record's flow ended (closed or
#: cancelled) when app.yaml ``portal.tracking_grace`` sets nothing, in hours.
TRACKING_GRACE_HOURS = 7 * 24

#: Records shown on one page of a portal "my records" list.
PORTAL_LIST_SIZE = 50

#: Options a form's reference select lists at most (the records the user may read).
FORM_CHOICES = 200

#: Lifetime of an API token when none is given, in days (0 = no expiry).
TOKEN_DAYS = 365

#: Length of generated API tokens, in random bytes (base64url encoded).
TOKEN_BYTES = 32

#: Longest bearer token looked up at all (longer ones are refused unhashed).
TOKEN_MAX_CHARS = 200

#: Password hashing method for werkzeug.security.generate_password_hash.
PASSWORD_HASH_METHOD = "scrypt"

#: Maximum length of string fields without an explicit max_length, in characters.
DEFAULT_STRING_LENGTH = 255

#: How far an intake channel signature's time may be from the receiver's clock, either
#: way, in seconds; also how long the same bytes count as a repeat of a message.
CHANNEL_SIGNATURE_TOLERANCE_SECONDS = 300.0

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

#: How often the render watchdog reads the CPU clocks of rendering threads, in seconds.
NOTIFY_WATCHDOG_POLL = 0.02

#: Longest text a notification template gets from one record field, in characters
#: (longer values are cut and end with "…").
NOTIFY_FIELD_MAX_CHARS = 4000

#: Timeout of one webhook POST, in seconds.
NOTIFY_WEBHOOK_TIMEOUT = 10.0

#: Timeout of each step of one SMTP conversation, in seconds.
NOTIFY_SMTP_TIMEOUT = 30.0

#: Messages listed one by one in a digest (more are counted, not listed).
NOTIFY_DIGEST_MAX_ITEMS = 50

#: Oldest an ``unconfigured`` notification may be and still be sent when its channel's
#: configuration appears (older ones are marked failed), in seconds.
NOTIFY_UNCONFIGURED_MAX_AGE_SECONDS = 24 * 3600

#: Deliveries returned by one ``notify.due()`` call (one scheduler tick).
NOTIFY_DUE_BATCH = 500

#: Days of recent work candidate profiles (30-day rating, handling time) are computed over.
PROFILE_WINDOW_DAYS = 30

#: Lowest rating (1-5) that counts as positive in a candidate's 30-day rating.
GOOD_RATING = 4

# ---------------------------------------------------------------- serve --demo

#: New requests per hour (of the wall clock) that reach the demo city over its channels.
DEMO_ORDERS_PER_HOUR = 6.0

#: How many times faster than real time the demo city's simulated people work.
DEMO_CITY_SPEED = 10.0

#: How many of its latest actions the demo city keeps in memory (``state.done``).
DEMO_CITY_MEMORY = 1000

#: Seconds between two steps of the demo city's thread.
DEMO_TICK_SECONDS = 2.0

#: Seed of the demo city's randomness (the same seed and clock give the same city).
DEMO_SEED = 1

#: Longest a simulated technician takes to answer an offer, in simulated minutes (they
#: always answer well within the accept window: the city shows offers answered).
DEMO_MAX_ANSWER_MINUTES = 4.0

#: Share of an offer's accept window within which a simulated technician answers.
DEMO_ANSWER_WINDOW_SHARE = 0.8

#: Distance (km) at which a simulated technician's chance to accept an offer halves.
DEMO_ACCEPT_HALF_KM = 8.0

#: Side of the generated demo photos and signatures, in pixels.
DEMO_IMAGE_PIXELS = 16

# ---------------------------------------------------------------- live updates

#: Seconds between two heartbeat comments on an idle live-update stream (also how
#: often it reads the change feed when no nudge came: a lost nudge costs at most this).
LIVE_HEARTBEAT_SECONDS = 15.0

#: Most changes a reconnecting page may have missed and still be sent (more: re-sync).
LIVE_REPLAY_MAX_EVENTS = 1000

#: Oldest missed change, in minutes, a reconnecting page is still sent (older: re-sync).
LIVE_REPLAY_MAX_MINUTES = 30.0

#: Changes read from the feed at a time by a live-update stream.
LIVE_BATCH = 200

#: Milliseconds a browser waits before reconnecting a dropped stream (the SSE ``retry``).
LIVE_RETRY_MS = 3000
