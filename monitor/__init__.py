"""contact-monitor: keeps an organisation's published support contacts honest."""

__version__ = "0.1.0"
