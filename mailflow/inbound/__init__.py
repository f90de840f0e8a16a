"""Inbound mail: mailflow's own SMTP server (``server``), the addresses it answers to
(``addresses``), and the readers of what arrives (``bounces``, ``autoreply``).

``addresses``, ``bounces`` and ``autoreply`` are plain parsing (standard library, flufl.bounce):
the services use them. ``server`` is a way in, like ``web`` and ``cli``: it asks
``services.inbound`` whether a recipient exists and hands it each message to keep.
"""
