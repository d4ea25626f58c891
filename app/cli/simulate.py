import sys
from pathlib import Path

import click


@click.command()
@click.option("--rounds", default=20_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--users", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--items", default=1000, show_default=True, type=click.IntRange(10, 100_000))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="write the CTR curves to this PNG")
@click.option("--http", is_flag=True, help="through a real `feedloop serve` on loopback, the learner learning asynchronously")
@click.option("--pace", type=click.FloatRange(min=0.1), help="with --http: rounds per second (default: as fast as it answers)")
def simulate(rounds: int, users: int, items: int, seed: int, plot: Path | None, http: bool, pace: float | None) -> None:
    """Watch the loop learn: synthetic users with hidden tastes drive a throwaway feedloop through its API,
    compared with uniform random, popularity and the oracle. Touches nothing of FEEDLOOP_HOME."""
    import tempfile

    from app.cli.simulation import plot as draw
    from app.cli.simulation import run_simulation

    with (
        tempfile.TemporaryDirectory(prefix="feedloop-sim-") as home,
        click.progressbar(length=rounds, label="simulating", file=sys.stderr) as bar,
    ):
        result = run_simulation(Path(home), rounds, users, items, seed, progress=bar.update, http=http, pace=pace)
    click.echo(f"click-through rate per {rounds // len(result.curves['feedloop'])} rounds:")
    for name, curve in result.curves.items():
        click.echo(f"  {name:<11}" + " ".join(f"{c:.2f}" for c in curve))
    click.echo("last quarter: " + ", ".join(f"{name} {ctr:.3f}" for name, ctr in result.last_quarter.items()))
    click.echo(f"feedloop closes {result.gap_closed:.0%} of the gap between uniform random and the oracle")
    if plot:
        draw(result, plot)
        click.echo(f"plot: {plot}")


commands = [simulate]
