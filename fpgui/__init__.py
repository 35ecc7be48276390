"""fpgui: tells whether an image is a modified copy of one in your protected library."""

__version__ = "0.1.0"
