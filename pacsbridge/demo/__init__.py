"""The demo PACS (a local Orthanc kept on 127.0.0.1) and the synthetic fertility clinic it is seeded with; the tests use both."""
