"""Quality endpoints: agreement, calibration, alignment and alerts."""
