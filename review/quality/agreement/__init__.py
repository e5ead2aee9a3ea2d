"""Inter-annotator agreement: our own vectorized numpy, checked against the reference
libraries in ``tests/review/test_agreement_reference.py``.

- :mod:`review.quality.agreement.ratings`: answers to one question as an items x reviewers table.
- :mod:`review.quality.agreement.coefficients`: percent agreement, Cohen's, Fleiss', Krippendorff's
  and Gwet's coefficients with bootstrap intervals, or the reason there is no figure.
- :mod:`review.quality.agreement.report`: one question's report with its breakdowns.

Pure computation: no database, no Django. The service that loads answers and stores
reports is :mod:`review.quality.services.agreement`.
"""

from review.quality.agreement.coefficients import (
    Figure,
    Weighting,
    cohen_kappa,
    compute,
    fleiss_kappa,
    gwet_ac,
    krippendorff_alpha,
    percent_agreement,
)
from review.quality.agreement.ratings import Level, Ratings
from review.quality.agreement.report import agreement_report

__all__ = [
    "Figure",
    "Level",
    "Ratings",
    "Weighting",
    "agreement_report",
    "cohen_kappa",
    "compute",
    "fleiss_kappa",
    "gwet_ac",
    "krippendorff_alpha",
    "percent_agreement",
]
