"""The checks support staff run on an integration: connection test, step-by-step diagnosis, health."""
