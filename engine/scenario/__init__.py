"""Scenario tests (``ivrflow test``), coverage and the explorer (``ivrflow explore``)."""

from .coverage import Coverage
from .explore import Explorer, ExploreReport, Problem
from .runner import CaseResult, Runner, SuiteResult, check_case
from .spec import Case, Suite, discover, load_suite

__all__ = ["Coverage", "Explorer", "ExploreReport", "Problem", "CaseResult", "Runner", "SuiteResult", "check_case",
           "Case", "Suite", "discover", "load_suite"]
