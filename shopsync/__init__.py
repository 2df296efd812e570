"""shopsync: TikTok Shop orders into a warehouse / OMS over Apache Kafka. This package is the CLI that wires it."""
