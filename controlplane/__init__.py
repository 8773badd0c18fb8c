"""The Django project and the ground floor every app builds on.

Nothing is imported here, so the pure helpers in `controlplane.lib` load without Django (the
reference gateway uses them). The Celery app is loaded by `ControlplaneConfig.ready()` in every Django
process, and found by `celery -A controlplane` as the `controlplane.celery` submodule.
"""
