"""Reads of quality: agreement reports, calibration sets and rounds, alignment mappings."""
