"""gunicorn settings of ``make run`` and ``benchmarks/load.py`` (``-c python:registry.gunicorn_conf``).

The address and the number of workers are given on the command line. The ``Server`` header says
``registry``, never gunicorn's name (gunicorn 27 sends ``Server: gunicorn``): a reply names no software
to look vulnerabilities up by. gunicorn reads the name when it builds each response, from
``gunicorn.http.wsgi``; this module is loaded by the master before the workers are forked, so every
worker inherits it.
"""

from __future__ import annotations

import gunicorn
import gunicorn.http.wsgi

gunicorn.SERVER = gunicorn.http.wsgi.SERVER = "registry"
# What the WSGI environ's SERVER_SOFTWARE tells the app: no version there either.
gunicorn.SERVER_SOFTWARE = gunicorn.http.wsgi.SERVER_SOFTWARE = "registry"

# One line per request on standard output: time, worker, client, request, status, bytes, milliseconds.
accesslog = "-"
access_log_format = '%(t)s %(p)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# Ctrl-C (SIGINT) stops at once; SIGTERM lets requests in progress finish within this many seconds.
graceful_timeout = 10
# No control socket (gunicorn 27 makes one per user, in the same place for every instance): a second
# instance on the same machine, such as the tests or the load benchmark beside `make run`, must not
# take over the first one's.
control_socket_disable = True
