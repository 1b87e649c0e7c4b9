"""Composing email: the message class, templates, plain text and CSS inlining.

Everything here builds ordinary Django ``EmailMessage`` objects; nothing sends.
"""
