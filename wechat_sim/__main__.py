"""``python -m wechat_sim``: the same as ``python -m bot simulator``."""

import sys

from wechat_sim.server import main

main(sys.argv[1:])
