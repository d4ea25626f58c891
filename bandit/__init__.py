"""Contextual bandit policy, exploration, Q-values and off-policy estimators (Vowpal Wabbit)."""
