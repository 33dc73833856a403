"""Agents turn what they observe into moves: prompts, reply parsing, re-asks."""
