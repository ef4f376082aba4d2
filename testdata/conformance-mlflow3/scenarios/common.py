"""Shared setup of the MLflow 3 recording scenarios."""
import os
import urllib.request

PROXY = os.environ.get("M3_URI", "http://127.0.0.1:5001")


def step(name):
    """Label the exchanges that follow (the recording proxy keeps the label)."""
    if os.environ.get("M3_NOSTEP"):
        return
    urllib.request.urlopen(urllib.request.Request(PROXY + "/__step", data=name.encode(), method="POST"))
