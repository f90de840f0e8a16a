"""Pure rules of the workflow: no SQL, no SMTP, no clock (callers pass ``now`` in)."""
