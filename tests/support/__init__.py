"""Test helpers on loopback: a real TLS server, a holding proxy in front of Orthanc, and the PostgreSQL server."""
