"""inbox-filter: end the one-sided relationships in your mailbox, politely."""

__version__ = "0.1.0"
