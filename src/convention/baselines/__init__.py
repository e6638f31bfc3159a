"""Baselines that are not neural networks over stamps: light-curve features + boosting."""
