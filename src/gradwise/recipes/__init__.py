"""Recipes: end-to-end jobs driven by a YAML config, read top to bottom.

Library code never imports a recipe; the command line and the demo do.
"""
