"""What a session call computes, before any HTTP: the answer's content and the change to
commit. The HTTP layer (`service.http.sessions`) turns it into a response and a commit."""

from dataclasses import dataclass, field
from typing import Any

from service.store.records import Changes


@dataclass
class Outcome:
    """What a mutating call computed: the answer, and the change to commit (None: none)."""

    content: dict[str, Any] | None
    changes: Changes | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
