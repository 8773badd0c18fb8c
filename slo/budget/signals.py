"""Signals other apps listen to (slo never imports them; routing connects in its `ready`).

`page_alerts_fired`: sent after the commit of an evaluation in which page-level burn-rate alerts
started firing, with `services` (sorted service names) and `at` (the evaluation instant). Routing
steps the services' rolling-out releases at once on it, so a burn rollback does not wait for the
next release tick (docs/releases.md, "Rollback timing").
"""

from __future__ import annotations

from django.dispatch import Signal

page_alerts_fired = Signal()
