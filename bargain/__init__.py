"""bargain: multi-agent LLM negotiation games and scaling laws of exploitation."""

__version__ = "0.1.0"
