"""pacsbridge's application shell: the `pacsbridge` command (cli/) and the demo (demo/), which start the worker and the dashboard on top of core."""
