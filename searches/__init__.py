"""Searches and their evaluations: scheduling, search steps, GPU evaluations, exports."""
