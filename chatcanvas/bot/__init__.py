"""chatcanvas."""
