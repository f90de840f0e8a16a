"""Webhooks to the marketplace: the address guard and the delivery worker (``docs/webhooks.md``).

The events and deliveries are written by ``services.webhooks``, in the transaction of each
change; this package sends them.
"""
