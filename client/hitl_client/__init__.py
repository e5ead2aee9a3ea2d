"""Client for a hitl server (standard library only): ``hitl gate`` and ``hitl run`` on
the command line, ``Client`` and ``run_experiment`` from Python."""

from hitl_client.api import Client, ExperimentRun, HitlError, Outcome, run_experiment

__all__ = ["Client", "ExperimentRun", "HitlError", "Outcome", "run_experiment"]
__version__ = "0.2.0"
