"""Run: python examples/scripted_and_mixed.py   (offline: a scripted human, the expert and a Python H by position)

The same question under three H's: the scripted human of policies/arith-human.yaml everywhere;
that script at the root with the offline expert below; and the script above a careless Python
H at the leaves, who is off by one on every odd sum. The last shows how one sloppy level of HCH
spoils the root's answer. Each run's trace says which policy acted at every node.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import hch
from hch.policies.callable import policy
from hch.policies.positional import PositionalPolicy
from hch.policies.scripted import ScriptedPolicy
from hch.workspace import Workspace

QUESTION = "What is the sum of 3, 1, 4, 1, 5, 9, 2, 6?"
SCRIPT = ScriptedPolicy.load(str(Path(__file__).resolve().parents[1] / "policies" / "arith-human.yaml"))


@policy("careless-adder@1")
async def careless(workspace: Workspace) -> str:
    """Adds the numbers of a short list, but is off by one whenever the sum is odd."""
    numbers = [int(n) for n in workspace.question.removeprefix("What is the sum of ").rstrip("?").split(",")]
    total = sum(numbers)
    return str(total + 1 if total % 2 else total)


def main() -> None:
    runs = {
        "script everywhere": SCRIPT,
        "script at the root, expert below": hch.make_policy(f"root=script:{SCRIPT.source},else=expert"),
        "script above, careless leaves": PositionalPolicy({"depth0": careless, "else": SCRIPT}),
    }
    for title, chosen in runs.items():
        result = hch.answer_sync(QUESTION, depth=2, policy=chosen)
        acted = Counter(data["policy"] for _, data in result.trace.workspaces())
        print(f"{title}: {result.answer} ({result.status}) · {result.summary.line()}")
        for fingerprint, count in acted.most_common():
            print(f"    {count} node(s) by {fingerprint}")


if __name__ == "__main__":
    main()
