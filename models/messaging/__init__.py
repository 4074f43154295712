"""Messaging: what caseconf sends to the agencies and how.

``messages`` and ``delivery`` compose a message from an event; ``calendar`` builds the iMIP
invitation; ``outbox`` keeps every message until the channel accepted it; ``channels`` and
``mail_plugin`` hand it to Apprise (e-mail and chat); ``notifications`` records what was sent.
"""
