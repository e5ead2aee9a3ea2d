"""Writes of quality: agreement reports, calibration and gold, metric alignment, alerts."""
