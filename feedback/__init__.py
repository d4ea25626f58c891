"""Polls, review queues, anomaly and drift detection, KPI thresholds."""
