"""A person at the terminal plays a seat (``model=human``, served as ``human/terminal``).

The seat's conversation is shown as it grows: first the rules with the seat's private values (the
system prompt), then each new instruction with the public events before it (messages of the others,
proposals, votes, feedback) and, after a reply that could not be used, the re-ask with its reason.
The person types one line per reply; an empty line is asked again, ``/rules`` shows the rules
and private values once more, and ``/quit`` (or end of input) stops the job like Ctrl-C. The reply is returned like a model's, so the game parses it, re-asks
on a bad move and records it exactly as it records a model's.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from typing import TextIO

RULE = "=" * 72
LINE = "-" * 72
HELP = "Your reply (one line, Enter to send; /rules shows the rules and your private values again, /quit stops):"


class Quit(KeyboardInterrupt):
    """The person stopped (``/quit`` or end of input): the job ends like on Ctrl-C; stored games stay."""


class Terminal:
    """Shows each seat's conversation once, in order, and reads the person's replies."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.stdin, self.stdout = stdin, stdout
        self.shown: dict[str, set[tuple[int, str]]] = {}  # per conversation: the user messages already shown
        self.lock = threading.Lock()  # two human seats (hot seat) take turns at the one terminal

    def ask(self, messages: list[dict]) -> str:
        """The person's reply to a conversation (blocking: call it from a worker thread)."""
        with self.lock:
            out = self.stdout or sys.stdout
            system = str(messages[0]["content"])
            key = hashlib.sha256(system.encode()).hexdigest()
            seen = self.shown.setdefault(key, set())
            if not seen:
                out.write(f"\n{RULE}\n{system.splitlines()[0]}\n{RULE}\n{system}\n")
            for index, message in enumerate(messages[1:], start=1):
                mark = (index, hashlib.sha256(str(message["content"]).encode()).hexdigest())
                if message["role"] == "user" and mark not in seen:
                    seen.add(mark)
                    out.write(f"\n{LINE}\n{message['content']}\n")
            out.write(f"\n{HELP}\n")
            while True:
                out.write("> ")
                out.flush()
                line = (self.stdin or sys.stdin).readline()
                reply = line.strip()
                if not line or reply == "/quit":
                    raise Quit("the human seat stopped; games already finished are stored, re-run to resume")
                if reply == "/rules":
                    out.write(f"\n{system}\n")
                elif reply:
                    return reply
                else:
                    out.write("Nothing was typed; please type your reply.\n")


TERMINAL = Terminal()
