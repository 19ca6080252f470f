"""Plans of configurations and seeds: the runner (jobs run by an engine passed in: local or Ray), the plan
file, NUDGE, the report and its plots."""
