"""caseconf's system of record: tables, sessions, the idempotency ledger, the audit log, the outbox."""
