"""Learned trace consumers: defect detection and failure-point labeling (issue: learn from traces)."""
