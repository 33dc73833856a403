"""Public messages read out of a game record, with what an analyst needs to judge each one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One public discussion message and its context.

    ``turn`` is the message's position in its round's discussion, so (round, turn) orders the
    messages of a game; ``values`` are the speaker's own private values of each item (the value of
    receiving it, for matrix preferences).
    """

    experiment_id: str
    game_index: int
    round: int
    turn: int
    seat: int
    text: str
    agents: tuple[str, ...]
    items: tuple[str, ...]
    values: tuple[float, ...]
    max_rounds: int

    @property
    def id(self) -> str:
        """The message's key within its game."""
        return f"r{self.round}t{self.turn}"

    @property
    def speaker(self) -> str:
        return self.agents[self.seat]

    def before(self, other: Message) -> bool:
        """Whether this message was said before ``other`` in the same game."""
        return (self.round, self.turn) < (other.round, other.turn)


def own_values(record: dict, seat: int) -> tuple[float, ...]:
    """A seat's private value of receiving each item."""
    values = record["preferences"]["values"][seat]
    if record["preferences"]["kind"] == "matrix":
        return tuple(float(row[seat]) for row in values)
    return tuple(float(v) for v in values)


def public_messages(record: dict) -> list[Message]:
    """Every public discussion message of a game, in the order it was said."""
    game = record["game"]
    agents, items = tuple(game["agent_names"]), tuple(game["items"])
    values = [own_values(record, s) for s in range(len(agents))]
    return [
        Message(record["experiment_id"], int(record["game_index"]), int(r["round"]), turn, int(d["seat"]),
                d["text"] or "", agents, items, values[d["seat"]], int(game["max_rounds"]))
        for r in record.get("rounds") or []
        for turn, d in enumerate(r.get("discussion") or [])
    ]
