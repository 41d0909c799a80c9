"""Fixtures for the document tests."""

from __future__ import annotations

import json
import zipfile

import pytest


@pytest.fixture
def rewrite_paramlab():
    """``rewrite(path, spec=None, members=None)``: rewrite a saved ``.paramlab`` file in place;
    ``spec(spec_dict)`` edits its model.json, ``members(dict name → bytes)`` its members."""
    def rewrite(path, spec=None, members=None):
        with zipfile.ZipFile(path) as zf:
            content = {n: zf.read(n) for n in zf.namelist()}
        if spec is not None:
            model = json.loads(content["model.json"])
            spec(model)
            content["model.json"] = json.dumps(model).encode()
        if members is not None:
            members(content)
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in content.items():
                zf.writestr(name, data)
    return rewrite
