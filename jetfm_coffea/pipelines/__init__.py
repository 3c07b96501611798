"""Orchestration, in one home: pipelines of resumable stages that drive the jobs.

* :mod:`~jetfm_coffea.pipelines.demo` (:func:`run_demo`): the main job, the whole
  pipeline on built-in data (``jetfm demo``), planned by
  :mod:`~jetfm_coffea.pipelines.demo_plan` and reported by
  :mod:`~jetfm_coffea.pipelines.report`;
* :mod:`~jetfm_coffea.pipelines.campaign` (:func:`run_campaign`): the label-efficiency
  study at a preset's scale, from generation to the cell study
  (``jetfm label-efficiency --scale``);
* :mod:`~jetfm_coffea.pipelines.stages`: the resumable stage runner.

Where the work runs is one :class:`~jetfm_coffea.cluster.Execution` throughout.
"""

from jetfm_coffea.pipelines.campaign import run_campaign
from jetfm_coffea.pipelines.demo import run_demo
from jetfm_coffea.pipelines.demo_plan import DemoPlan, Sample

__all__ = ["DemoPlan", "Sample", "run_campaign", "run_demo"]
