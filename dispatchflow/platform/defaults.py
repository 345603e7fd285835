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
