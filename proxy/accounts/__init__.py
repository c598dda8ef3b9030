"""Users and database-managed gateway keys."""
