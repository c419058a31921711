"""What spark-submit runs in the driver pod: ``local:///opt/airpath/main.py stream …``.

The Spark Operator submits a Python application as a file; this file hands the
SparkApplication's ``arguments`` to the ``airpath`` command line, so the cluster runs the
same ``airpath stream`` / ``airpath train`` as a laptop does.
"""

import sys

from airpath.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
