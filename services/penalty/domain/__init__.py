"""Penalty case domain (行政处罚案件): pure state machine and rules."""
