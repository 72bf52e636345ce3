"""ExampleEbm, an ebmbench method (registered by the entry point in pyproject.toml)."""
