"""The gateway fleet: registry, desired revisions, delivery and the fleet view.

`signing`, `bundle` and `health` are pure (no Django): the reference gateway imports the first two.
"""
