from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field


class ApprenticeReport(BaseModel):
    events: int = Field(description="recent decisions that named a baseline_item_id")
    agreement: Optional[float] = Field(description="share of them where the policy's first choice was the baseline")
    baseline_reward: Optional[float] = Field(description="mean reward of the baseline items served first")


class LoopStatus(BaseModel):
    mode: str
    model_version: str
    apprentice: ApprenticeReport
