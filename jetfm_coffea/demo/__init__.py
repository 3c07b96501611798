"""The main job: the whole pipeline on built-in data, resumable stage by stage."""

from jetfm_coffea.demo.pipeline import run_demo
from jetfm_coffea.demo.plan import DemoPlan, Sample

__all__ = ["DemoPlan", "Sample", "run_demo"]
