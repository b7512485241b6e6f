"""A small reader of the Dockerfile's instructions, enough to run what the image runs."""

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.compose import DOCKERFILE


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # 0 for the first FROM's stage


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    found, stage, pending = [], -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = pending + line, ""
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        found.append(Instruction(keyword, args.strip(), stage))
    return found


def final_stage() -> list[Instruction]:
    every = instructions()
    last = max(i.stage for i in every)
    return [i for i in every if i.stage == last]


def exec_form(args: str) -> list[str]:
    """A JSON-array command; a shell-form one is refused (signals would go to the shell)."""
    command = json.loads(args)
    assert isinstance(command, list) and all(isinstance(a, str) for a in command), args
    return command


def env() -> dict[str, str]:
    values = {}
    for instruction in final_stage():
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def cmd() -> list[str]:
    (last,) = [i for i in final_stage() if i.keyword == "CMD"][-1:]
    return exec_form(last.args)


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options (`--interval` ...) and its exec-form command."""
    (check,) = [i for i in final_stage() if i.keyword == "HEALTHCHECK"]
    options, _, command = check.args.partition("CMD ")
    parsed = dict(opt.removeprefix("--").split("=", 1) for opt in options.split())
    return parsed, exec_form(command)
