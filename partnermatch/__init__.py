"""partnermatch: shared code of the services (event contract, Kafka adapter, settings, logging, CLI)."""
