"""The lead's quality pages (calibration, alignment, alerts) and the quality report."""
