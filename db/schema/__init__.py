"""Schemas on both engines: the model, comparisons and the diff planner."""
