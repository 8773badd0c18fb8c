"""The budget engine's Django side: buckets in budget units, evaluation, alerts, notifications,
error-budget policies and cost per hit. The math itself lives in `slo.engine` and `slo.budget.cost`.
"""
