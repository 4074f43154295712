"""What caseconf sends to the agencies and how.

``messages`` and ``delivery`` compose a message from an outbox row (``models.record.outbox``);
``calendar`` builds the iMIP invitation; ``sending`` sends each queued row on its own until the
channel accepted it; ``channels`` and ``mail_plugin`` hand it to Apprise (e-mail and chat).
"""
