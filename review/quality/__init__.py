"""Quality: how far reviewers agree, how they score against gold answers (calibration sets,
rounds, the onboarding gate and gold items mixed into live queues), how an automated score
aligns with them, the alerts when a figure falls below its threshold, and the report.

The core of review never imports this package: it announces through :mod:`review.hooks`
(the claim gate and the answers-changed signal), and quality listens.
"""
