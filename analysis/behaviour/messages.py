"""Public messages read out of a game record, with what an analyst needs to judge each one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One public discussion message and its context.

    ``turn`` is the message's position in its round's discussion, so (round, turn) orders the
    messages of a game; ``items`` are the goods its private values are about (items, treaty issues or
    co-funding projects) and ``values`` the speaker's own private value of each (see :func:`own_values`); ``attempt`` is that of the call whose reply it is (> 0
    after re-asks), which with round, phase and seat names the call in the record.
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
    attempt: int = 0

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


def goods(record: dict) -> tuple[str, ...]:
    """What the game's private values are about: its items, treaty issues or co-funding projects."""
    game = record["game"]
    return tuple(game.get("items") or game.get("issues") or game.get("projects"))


def own_values(record: dict, seat: int) -> tuple[float, ...]:
    """A seat's private value of each good: receiving an item, an issue's weight, a funded project."""
    prefs = record["preferences"]
    if prefs["kind"] == "treaty":
        return tuple(float(w) for w in prefs["weights"][seat])
    values = prefs["values"][seat]
    if prefs["kind"] == "matrix":
        return tuple(float(row[seat]) for row in values)
    return tuple(float(v) for v in values)


def _final_attempts(record: dict) -> dict[tuple[int, int], list[int]]:
    """Per (round, seat): the attempt of the last call of each discussion turn, in speaking order."""
    turns: dict[tuple[int, int], list[int]] = {}
    for call in record.get("calls") or []:  # sorted by round, phase, seat; a seat's turns keep their order
        if call["phase"] == "discussion":
            attempts = turns.setdefault((call["round"], call["seat"]), [])
            if call["attempt"] == 0 or not attempts:
                attempts.append(call["attempt"])
            else:
                attempts[-1] = call["attempt"]
    return turns


def public_messages(record: dict) -> list[Message]:
    """Every public discussion message of a game, in the order it was said."""
    game = record["game"]
    agents, items = tuple(game["agent_names"]), goods(record)
    values = [own_values(record, s) for s in range(len(agents))]
    attempts = _final_attempts(record)
    out = []
    for r in record.get("rounds") or []:
        spoken: dict[int, int] = {}
        for turn, d in enumerate(r.get("discussion") or []):
            k = spoken[d["seat"]] = spoken.get(d["seat"], -1) + 1
            tries = attempts.get((r["round"], d["seat"]), [])
            out.append(Message(record["experiment_id"], int(record["game_index"]), int(r["round"]), turn,
                               int(d["seat"]), d["text"] or "", agents, items, values[d["seat"]],
                               int(game["max_rounds"]), tries[k] if k < len(tries) else 0))
    return out
