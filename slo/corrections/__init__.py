"""Status corrections: maintenance windows and accepted incidents excluded from SLO budgets."""
