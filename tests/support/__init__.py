"""Test helpers: a real TLS server on loopback for certificate and network failures."""
