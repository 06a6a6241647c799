"""Dense and sparse deep-RL baselines (installed as ``sgmmq.baselines``)."""
