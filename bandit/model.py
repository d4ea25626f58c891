"""A served model: the VW policy, the Q-table and the version that names them, built from or into a snapshot.

Everything that decides, learns, explains or exports goes through this one class, so that the three always
travel together and a decision logs the version whose weights and Q-values made it."""

from __future__ import annotations

from bandit.policy import PolicyConfig, VWPolicy
from bandit.qvalues import QTable
from bandit.snapshots import Snapshot, SnapshotError

INITIAL_VERSION = "v0"


class ServedModel:
    def __init__(self, version: str, policy: VWPolicy, qvalues: QTable, withdrawn: bool = False):
        self.version, self.policy, self.qvalues = version, policy, qvalues
        # Taken out of serving (a red model KPI): the fallback ranking serves while it goes on learning.
        self.withdrawn = withdrawn

    @classmethod
    def fresh(cls, config: PolicyConfig, alpha: float, seed: int = 0) -> ServedModel:
        return cls(INITIAL_VERSION, VWPolicy(config, seed=seed), QTable(alpha))

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, alpha: float, seed: int = 0) -> ServedModel:
        """Raises SnapshotError when the archive's settings are not ones feedloop writes (checked before any of
        them reaches Vowpal Wabbit) or its model does not load."""
        try:
            config = PolicyConfig.from_dict(snapshot.settings.get("policy"))
        except (TypeError, ValueError) as exc:
            raise SnapshotError(f"the archive's policy settings are refused: {exc}") from None
        try:
            policy = VWPolicy(config, seed=seed, model=snapshot.model)
        except Exception as exc:  # VW raises plain RuntimeErrors for a model it cannot read
            raise SnapshotError(f"the archive's model does not load: {exc}") from None
        return cls(snapshot.version, policy, QTable.from_rows(snapshot.qvalues, alpha), bool(snapshot.meta.get("withdrawn")))

    def to_snapshot(self, version: str, meta: dict) -> Snapshot:
        return Snapshot(
            version=version,
            model=self.policy.to_bytes(),
            settings={"policy": self.policy.config.to_dict(), "q_alpha": self.qvalues.alpha},
            qvalues=[list(r) for r in self.qvalues.rows()],
            meta=meta,
        )
