"""The loop's mode and, in apprentice mode, how often the policy agrees with the app's own choices."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.models import Event, Reward

APPRENTICE_WINDOW = 1000  # recent decisions the apprentice report covers


@dataclass(frozen=True)
class ApprenticeReport:
    events: int
    agreement: float | None
    baseline_reward: float | None


def apprentice_report(session: Session) -> ApprenticeReport:
    recent = session.exec(
        select(Event.id, Event.baseline_item_id, Event.policy_item_id)
        .where(col(Event.baseline_item_id).is_not(None))
        .order_by(col(Event.created_at).desc())
        .limit(APPRENTICE_WINDOW)
    ).all()
    if not recent:
        return ApprenticeReport(0, None, None)
    rewards = session.exec(
        select(Reward.value).where(
            col(Reward.event_id).in_([e.id for e in recent]),
            Reward.source == "client",
            col(Reward.item_id).in_({e.baseline_item_id for e in recent}),
        )
    ).all()
    return ApprenticeReport(
        events=len(recent),
        agreement=sum(e.baseline_item_id == e.policy_item_id for e in recent) / len(recent),
        baseline_reward=sum(rewards) / len(rewards) if rewards else None,
    )
