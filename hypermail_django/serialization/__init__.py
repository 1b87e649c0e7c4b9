"""Serialization internals: a Django message to an envelope and its bytes.

Shared by the backends, outbound policies, previews and background delivery.
"""
