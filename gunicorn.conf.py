"""gunicorn's settings for this service (gunicorn reads ./gunicorn.conf.py by itself).

Production runs behind the buffering proxy of deploy/nginx.conf (docs/scaling.md); each value
can be changed by the environment variable named next to it.
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Each worker listens on its own socket; the kernel spreads new connections over them.
reuse_port = True
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))

# Only these peers may set X-Forwarded-* and SCRIPT_NAME (a comma-separated list of addresses or
# networks). None by default: gunicorn's own default trusts 127.0.0.1, so any local process could
# move the application under another path prefix and past every check keyed on it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")

# Request-line and header limits: an API URL fits in 8 KB; 50 header fields is more than any client sends.
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 8190
