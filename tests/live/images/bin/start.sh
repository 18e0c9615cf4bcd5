#!/bin/bash
# The image's start.sh: gunicorn with the Frappe app, preloaded, from the sites folder; here the
# stand-in web app (frappe.app) with gunicorn's start-up behaviour.
set -e
GUNICORN_THREADS=${GUNICORN_THREADS:-4}
GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}
GUNICORN_TIMEOUT=${GUNICORN_TIMEOUT:-120}
echo "Booting Gunicorn with $GUNICORN_WORKERS workers and $GUNICORN_THREADS threads..."
cd /home/frappe/frappe-bench/sites
exec /home/frappe/frappe-bench/env/bin/python -m frappe.app
