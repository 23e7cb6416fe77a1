"""pacsbridge tests."""
