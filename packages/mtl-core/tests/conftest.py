import sys
from pathlib import Path

# the helper module with the gradient families sits next to the tests
sys.path.insert(0, str(Path(__file__).parent))
