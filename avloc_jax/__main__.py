"""`python -m avloc_jax` is the same as the `avloc` console script."""

import sys

from avloc_jax.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
