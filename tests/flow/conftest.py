from pathlib import Path

import pytest

from engine.actions import Action, Registry, Result

HERE = Path(__file__).parent


async def _run(ctx, params):
    return Result("found", {"answer": 42})


LOOKUP = Action(
    name="test.lookup",
    summary="test action",
    params={"type": "object", "additionalProperties": False, "required": ["code"],
            "properties": {"code": {"type": "string"}}},
    outcomes=("found", "missing"),
    sets={"found": ("answer",)},
    run=_run,
)


@pytest.fixture
def registry():
    return Registry([LOOKUP])
