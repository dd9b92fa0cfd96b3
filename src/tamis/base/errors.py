"""Errors a user can cause and fix. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class TamisError(Exception):
    """A mistake in the user's input or options; the message says what is wrong and the fix."""


class BadRecord(TamisError):
    """One input record that cannot be used.

    ``reason`` is a short code written to ``rejected.jsonl`` when ``--skip-bad`` is given
    (``bad_json``, ``not_an_object``, ``missing_field``, ``wrong_type``, ``empty_response``,
    ``format_mismatch``, ``duplicate_id``, ``bad_encoding``, ``bad_csv``);
    ``where`` names the file and line.
    """

    def __init__(self, where: str, reason: str, message: str, fix: str = "") -> None:
        self.where = where
        self.reason = reason
        self.detail = message
        self.fix = fix
        text = f"{where}: {message}"
        if fix:
            text += f"; {fix}"
        super().__init__(text)
