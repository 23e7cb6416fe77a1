"""pacsbridge's tests: a package, so that tests/dashboard is `tests.dashboard` and never shadows the `dashboard` package under test."""
