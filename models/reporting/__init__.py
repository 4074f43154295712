"""What managers and the client read: the portfolio, a case's timeline, continuity, the consent summary."""
