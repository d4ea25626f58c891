"""`feedloop evaluate --dataset NAME --policy uniform|live|candidate|MODEL_FILE`: off-policy estimates on an imported log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli import dataset_rows, load_app


@click.command()
@click.option("--dataset", "name", required=True, help="a dataset imported with `feedloop logs import`")
@click.option(
    "--policy",
    required=True,
    help="uniform (each action of the dataset alike), live (the model serving now), candidate (the newest "
    "retrained candidate) or a model archive file as `feedloop models export` writes it",
)
@click.option("--json", "as_json", is_flag=True, help="end with one line of JSON holding the estimates")
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the cross-fitting split and the bootstrap")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(100, 100_000), help="bootstrap resamples")
def evaluate(name: str, policy: str, as_json: bool, seed: int, resamples: int) -> None:
    """Estimate what POLICY would have earned per row of DATASET with IPS, self-normalised IPS and doubly robust,
    each with a 95% bootstrap interval. Doubly robust's reward model (mean reward per action) is cross-fitted on
    two random halves of the rows."""
    from sqlmodel import Session

    from app.services.evaluation import build_log, distinct_actions, estimate, uniform_groups

    app = load_app()
    settings = app.config["FEEDLOOP"]
    with Session(app.extensions["db_engine"]) as s:
        info, rows = dataset_rows(s, name)
        actions = distinct_actions(rows)
        if policy == "uniform":
            label, log = "uniform", build_log(rows, actions, uniform_groups(rows, actions), seed)
        else:
            label, log = _model_log(s, settings, policy, rows, actions, seed)
    # The JSON line names the policy as it was asked for; the table says which model version that was.
    result = estimate(info.name, policy, log, len(actions), seed=seed, resamples=resamples)
    click.echo(f"dataset {info.name}: {result.n} rows, {result.actions} distinct actions; policy {label}")
    click.echo(f"{'estimator':<10}{'value':>12}{'95% interval':>28}")
    for estimator, e in result.estimates.items():
        click.echo(f"{estimator.upper():<10}{e.value:>12.4f}{f'[{e.low:.4f}, {e.high:.4f}]':>28}")
    if as_json:
        click.echo(json.dumps(result.to_json()))


def _model_log(s, settings, policy: str, rows, actions, seed: int):
    from app.services.evaluation import build_log, describe_items, model_groups
    from app.services.model_store import ModelStore, load_snapshot
    from bandit.policy import NonFiniteModel
    from bandit.snapshots import SnapshotError

    if policy == "live":
        model = ModelStore(settings).current()
        label = f"live ({model.version})"
    elif policy == "candidate":
        model = _newest_candidate(s, settings)
        label = f"candidate ({model.version})"
    else:
        path = Path(policy)
        if not path.is_file():
            raise click.BadParameter(
                f"{policy!r} is neither uniform, live, candidate nor a model archive file", param_hint="--policy"
            )
        try:
            model = load_snapshot(path.read_bytes(), settings)
        except SnapshotError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        label = f"{path.name} ({model.version})"
    described = describe_items(s, actions)
    try:
        with click.progressbar(length=len(rows), label=f"ranking {len(actions)} actions", file=sys.stderr) as bar:
            groups = model_groups(rows, actions, model, described, settings.segment_keys, on_rows=bar.update)
            return label, build_log(rows, actions, groups, seed)
    except NonFiniteModel as exc:
        raise click.ClickException(f"{label}: {exc}") from None


def _newest_candidate(s, settings):
    from sqlmodel import col, select

    from app.models import ModelCard, ModelVersion
    from app.services.model_store import load_snapshot

    version = s.exec(
        select(ModelCard.candidate_version)
        .where(col(ModelCard.candidate_version).is_not(None))
        .order_by(col(ModelCard.id).desc())
    ).first()
    kept = s.get(ModelVersion, version) if version else None
    if kept is None:
        raise click.ClickException(
            "no retrained candidate yet: run `feedloop jobs run retrain` or `feedloop train --dataset NAME`"
        )
    model = load_snapshot(kept.archive, settings)
    model.version = version
    return model


commands = [evaluate]
