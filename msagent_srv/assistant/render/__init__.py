"""Renderers: engine events into the bytes of each wire format."""
