import sys

from grasp_experiments.cli import main

sys.exit(main())
