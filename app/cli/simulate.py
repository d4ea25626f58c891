import sys
from pathlib import Path

import click

from bandit.worlds import WORLDS


@click.command()
@click.option("--world", type=click.Choice(WORLDS), default="default", show_default=True, help="which synthetic world")
@click.option("--rounds", default=20_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--users", type=click.IntRange(1, 100_000), help="default: 200, or 5,000 in the sparse world")
@click.option("--items", default=1000, show_default=True, type=click.IntRange(10, 100_000))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="write the CTR curves to this PNG")
@click.option("--http", is_flag=True, help="through a real `feedloop serve` on loopback, the learner learning asynchronously")
@click.option("--pace", type=click.FloatRange(min=0.1), help="with --http: rounds per second (default: as fast as it answers)")
def simulate(
    world: str, rounds: int, users: int | None, items: int, seed: int, plot: Path | None, http: bool, pace: float | None
) -> None:
    """Watch the loop learn: synthetic users with hidden tastes drive a throwaway feedloop through its API,
    compared with uniform random, popularity, plain Vowpal Wabbit as its tutorial sets it up, the ceiling of a run
    this long (a policy told the tastes that learns only the items' quality), and the oracle.
    Worlds: default; contextflip (tastes flip at weekends, sent as the context's `week`); drift (half the users
    change their favourite topic half-way); sparse (5,000 users, a few visits each); fraud (a click-fraud bot,
    confirmed in review a quarter of the way in). Touches nothing of FEEDLOOP_HOME."""
    import tempfile

    from app.cli.simulation import plot as draw
    from app.cli.simulation import run_simulation

    if http and world == "fraud":
        raise click.UsageError("the fraud world runs in process only (its reviewer confirms the bot in this process)")
    with (
        tempfile.TemporaryDirectory(prefix="feedloop-sim-") as home,
        click.progressbar(length=rounds, label="simulating", file=sys.stderr) as bar,
    ):
        result = run_simulation(Path(home), rounds, users, items, seed, progress=bar.update, http=http, pace=pace, world=world)
    click.echo(f"world {world}; click-through rate per {rounds // len(result.curves['feedloop'])} rounds:")
    for name, curve in result.curves.items():
        click.echo(f"  {name:<11}" + " ".join(f"{c:.2f}" for c in curve))
    click.echo("last quarter: " + ", ".join(f"{name} {ctr:.3f}" for name, ctr in result.last_quarter.items()))
    click.echo(f"plain VW (tutorial set-up) closes {result.gap_closed_by('tutorial-vw'):.0%} of the gap")
    click.echo(
        f"the ceiling of a run this long (told every user's tastes, learning only which items are good) closes "
        f"{result.gap_closed_by('ceiling'):.0%}"
    )
    click.echo(f"feedloop closes {result.gap_closed:.0%} of the gap between uniform random and the oracle")
    if result.fraud:
        fraud = result.fraud
        before, after = fraud.bot_learned
        click.echo(
            f"fraud bot confirmed in review before round {fraud.confirmed_at}; learned {before} of its rewards before, {after} after"
        )
        click.echo(f"the item it clicked most before ({fraud.target}), per twentieth:")
        click.echo("  score above its peers " + " ".join(f"{s:.2f}" for s in fraud.score))
        click.echo("  share shown to readers " + " ".join(f"{s:.3f}" for s in fraud.share))
        click.echo(f"  score rise after the confirmation: {fraud.rise_after_confirmation():.3f}")
    if plot:
        draw(result, plot)
        click.echo(f"plot: {plot}")


commands = [simulate]
