"""Email: templates, MIME composition, the outbox, the delivery worker, the embedded inbox."""
