"""Pure game engine: preferences, rules and reference solutions (no I/O, no LLM, no global RNG)."""

from bargain.game.preferences import KINDS, PRECISION, TOTAL, Preferences, generate_preferences
from bargain.game.rules import (
    SPEAKING_ORDERS,
    VOTE_RULES,
    InvalidAllocation,
    accepted_proposals,
    choose_proposal,
    discounted,
    parse_allocation,
    speaking_order,
    utilities,
)
from bargain.game.solutions import (
    MAX_ALLOCATIONS,
    all_allocations,
    is_pareto_optimal,
    kalai_smorodinsky,
    max_welfare,
    nash_bargaining,
    pareto_optimal_mask,
    utility_table,
)

__all__ = [
    "KINDS",
    "MAX_ALLOCATIONS",
    "PRECISION",
    "SPEAKING_ORDERS",
    "TOTAL",
    "VOTE_RULES",
    "InvalidAllocation",
    "Preferences",
    "accepted_proposals",
    "all_allocations",
    "choose_proposal",
    "discounted",
    "generate_preferences",
    "is_pareto_optimal",
    "kalai_smorodinsky",
    "max_welfare",
    "nash_bargaining",
    "parse_allocation",
    "pareto_optimal_mask",
    "speaking_order",
    "utilities",
    "utility_table",
]
