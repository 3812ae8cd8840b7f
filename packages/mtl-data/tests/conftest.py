"""Make the fixture writers (``mtl_data_fixtures``) importable under pytest's importlib import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
