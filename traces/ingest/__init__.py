"""Ingestion: two decoders (REST events in ``validation``, OTLP in ``traces.otlp``)
produce the same records (``records``), which one store (``store``) writes."""
