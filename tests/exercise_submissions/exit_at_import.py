# expect: fail: SystemExit
import sys

sys.exit(0)
