"""An integration's settings and their validation: the fields, presets, path templates, auth kinds."""
