"""coffea processors of jetfm-coffea (stateless and picklable; shipped in the wheel)."""

__all__: list[str] = []
