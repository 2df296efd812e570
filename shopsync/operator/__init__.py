"""Operator logic behind `shopsync explain|replay|dlq|tail|offsets`."""
