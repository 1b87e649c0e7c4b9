"""A Django project for the task-worker subprocesses of ``tests/background/``.

Its database is a SQLite file and its mailer an SMTP server on a fixed port,
both named by environment variables, so the test process, the workers and the
management commands it starts all share them.
"""
