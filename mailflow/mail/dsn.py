"""A delivery status notification (RFC 3464), as a relay writes one when it cannot deliver:
what the embedded inbox sends back for ``smtp.embedded_bounce_pattern`` addresses, so the
bounce flow can be seen without a real relay."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, make_msgid

REPORTING_MTA = "mailflow-inbox.localhost"


def failure_report(
    *,
    to: str,
    recipient: str,
    original_headers: bytes,
    at: datetime,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 Mailbox does not exist",
) -> bytes:
    """The bytes of a DSN to ``to`` (the VERP return path) saying ``recipient`` failed for
    good; ``original_headers`` are returned as ``text/rfc822-headers``."""
    boundary = "mailflow-dsn-" + make_msgid(domain=REPORTING_MTA)[1:-1].replace("@", ".")
    headers = original_headers.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n")
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{REPORTING_MTA}>\r\n"
        f"To: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(at)}\r\n"
        f"Message-ID: {make_msgid(domain=REPORTING_MTA)}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f"This is the mail system at {REPORTING_MTA} (mailflow's embedded inbox).\r\n"
        f"The address matches smtp.embedded_bounce_pattern, so the message was\r\n"
        f"refused as a real mail server refuses an address that does not exist.\r\n"
        f"\r\n"
        f"<{recipient}>: {diagnostic}\r\n"
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/delivery-status\r\n"
        f"\r\n"
        f"Reporting-MTA: dns; {REPORTING_MTA}\r\n"
        f"Arrival-Date: {format_datetime(at)}\r\n"
        f"\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n"
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n"
        f"\r\n"
    ).encode()
    return head + headers + f"\r\n\r\n--{boundary}--\r\n".encode()
