"""One error hierarchy for the whole tool.

Adapters map their library's exceptions to these (``raise ... from exc``); the CLI
translates them once, at the boundary, into a message and an exit code. Every
message is written for the user: what went wrong, then how to fix it.
"""

from __future__ import annotations


class InboxFilterError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; ``hint`` is the fix."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  Fix: {self.hint}"
        return self.message


class ConfigError(InboxFilterError):
    """The config file is missing, unreadable or invalid."""

    exit_code = 3


class CredentialError(InboxFilterError):
    """No password could be found, or the keyring has no secure backend."""

    exit_code = 4


class ImapError(InboxFilterError):
    """Anything that went wrong talking to the IMAP server."""

    exit_code = 5


class ConnectError(ImapError):
    """The server could not be reached, or the connection broke."""


class TlsError(ImapError):
    """TLS could not be established or verified (or STARTTLS is not offered)."""


class AuthError(ImapError):
    """The server refused the login."""

    exit_code = 4


class FolderError(ImapError):
    """A folder the tool needs (INBOX, Sent, Drafts) is missing or ambiguous."""

    exit_code = 6


class SourceError(InboxFilterError):
    """A local source (Maildir, mbox, directory) cannot be read."""

    exit_code = 6


class StoreError(InboxFilterError):
    """The local state database cannot be opened, migrated or written."""

    exit_code = 7


class MessageParseError(InboxFilterError):
    """One message could not be parsed. Caught per message: never stops a scan."""


class UnsubscribeError(InboxFilterError):
    """An unsubscribe target is refused (unsafe URI or address, RFC 2369/8058 rules)."""
