from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
application = get_wsgi_application()
# Wrappers in front of Django's handler (settings.WSGI_FAST_PATHS, dotted paths: this ground-floor
# module imports no app): the gateways' config poll answered 304 from the Redis poll cache.
for _path in reversed(settings.WSGI_FAST_PATHS):
    application = import_string(_path)(application)
