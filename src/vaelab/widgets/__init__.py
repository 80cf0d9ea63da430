"""Widget builders: thin ipywidgets wrappers over plain, tested functions."""
