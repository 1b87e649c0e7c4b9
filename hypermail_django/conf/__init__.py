"""Every setting of the app, one module per area, read at call time.

Importing this package imports nothing: each area loads on its own.
"""
