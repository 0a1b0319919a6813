import os
import sys

# tests/ holds small shared helpers (crc32c_ref, knobs) imported by the test modules.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
