"""The email channel: IMAP in, SMTP out (channel.py); threads (threads.py); what a mail
says (content.py)."""

from channels.email.channel import EmailChannel

__all__ = ["EmailChannel"]
