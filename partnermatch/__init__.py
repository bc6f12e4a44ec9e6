"""partnermatch: the shared package of the services (event contract, Kafka adapter, settings, logging,
HTTP edge); the ground floor, importing no service."""
