"""coffea processors of jetfm-coffea (stateless and picklable).

The repository keeps them in its top-level ``processors/`` folder; the package reaches
them as ``jetfm_coffea.processors`` (a link in the checkout, real files in the wheel), so
nothing named ``processors`` is installed beside an analysis's own ``processors`` folder.
"""

__all__: list[str] = []
