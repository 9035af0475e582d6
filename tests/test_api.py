"""The public API: ``predcode.__all__`` is complete and every name in it resolves."""

from __future__ import annotations

import predcode
import predcode.models
from predcode.base import Model


def test_every_name_in_all_resolves():
    for name in predcode.__all__:
        assert hasattr(predcode, name), name


def test_all_exports_every_family_and_the_models_api():
    missing = sorted(set(predcode.models.__all__) - set(predcode.__all__))
    assert not missing, f"add to predcode/__init__.py: {missing}"
    families = {n for n in dir(predcode.models)
                if isinstance(getattr(predcode.models, n), type)
                and issubclass(getattr(predcode.models, n), Model)}
    assert {"PCN", "MLP", "RaoBallard", "HelmholtzMachine", "IJEPA", "LatentWorldModel",
            "PixelWorldModel", "DEM", "Agent"} <= families
    assert families <= set(predcode.__all__)


def test_public_names_of_the_package_are_in_all():
    public = {n for n, v in vars(predcode).items()
              if not n.startswith("_") and not isinstance(v, type(predcode))}
    assert public <= set(predcode.__all__) | {"annotations"}, sorted(
        public - set(predcode.__all__))
