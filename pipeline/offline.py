"""No network at run time: the offline switches of the libraries callqa uses.

Imported by the CLI before anything else (huggingface_hub reads its switches when it is
imported). Models come from installed packages or local paths; with these set, a library
that would reach for the network fails at once instead of downloading. Values already in the
environment are left as they are.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub (faster-whisper's model lookup)
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",  # tldextract (Presidio's e-mail check): the bundled suffix list only
}


def set_offline_switches() -> None:
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


set_offline_switches()
