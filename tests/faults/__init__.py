"""Fault injection: what the library does when providers, storage and inputs misbehave."""
