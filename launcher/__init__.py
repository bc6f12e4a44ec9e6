"""The local launcher: `partnermatch up` (redis-server, the broker and every process the services
declare, supervised), its demo data, and the `partnermatch` console script. It stands above the
services; nothing in `partnermatch/` or `services/` imports it."""
