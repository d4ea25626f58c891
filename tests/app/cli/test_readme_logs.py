"""The README's "Evaluate on your own logs" works as written: its CSV imports and gives the estimates it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_example_imports_and_estimates_as_shown(ready, tmp_path):
    section = README.read_text().split("### Evaluate on your own logs", 1)[1]
    csv = re.search(r"```csv\n(.*?)```", section, re.S).group(1)
    shown = json.loads(re.search(r"^# (\{\"dataset\".*)$", section, re.M).group(1).replace(", …}", "}"))
    path = tmp_path / "logged.csv"
    path.write_text(csv)

    ready("logs", "import", path, "--name", "old-shop")
    result = ready("evaluate", "--dataset", "old-shop", "--policy", "uniform", "--json")

    answer = json.loads(result.output.strip().splitlines()[-1])
    assert (answer["dataset"], answer["policy"], answer["n"]) == (shown["dataset"], shown["policy"], shown["n"])
    assert [round(v, 4) for v in [answer["ips"]["value"], *answer["ips"]["ci"]]] == [shown["ips"]["value"], *shown["ips"]["ci"]]
    for line in re.findall(r"^# (IPS|SNIPS|DR) +([\d.]+) +\[([\d.]+), ([\d.]+)\]$", section, re.M):
        name, value, low, high = line
        assert f"{float(value):.4f}" == f"{answer[name.lower()]['value']:.4f}"
        assert [f"{x:.4f}" for x in answer[name.lower()]["ci"]] == [low, high]
