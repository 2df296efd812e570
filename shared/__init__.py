"""shopsync's common library: settings, logging, Kafka wiring, event envelope, topic names, schemas.

Nothing here imports a service; services import from here.
"""
