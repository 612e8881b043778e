"""pocketcheck: tells a person, safely and quickly, whether a phone talks to stalkerware."""

__version__ = "0.1.0"
