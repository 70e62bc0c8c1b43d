"""Talking to a training API: the HTTP client, the durable ledger and the oracles."""
