"""Built-in codec plugins. Each module is one entry point in the ``lmar`` group, like any third-party plugin."""
