"""The schema run shares the live-server fixtures of the security probes (the web server, granian, DEBUG off,
PostgreSQL test database, Redis)."""

from tests.security.live.conftest import server_factory, tokens, users  # noqa: F401 - fixtures
