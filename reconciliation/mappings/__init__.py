"""GL mapping presets shipped with the package (YAML, read with importlib.resources)."""
