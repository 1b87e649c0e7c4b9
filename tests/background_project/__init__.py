"""A Django project for task-worker subprocesses (``tests/test_background_crash.py``).

Its database is a SQLite file and its mailer an SMTP server on a fixed port,
both named by environment variables, so the test process, the workers and the
management commands it starts all share them.
"""
