"""`python -m rawlab` is `rawlab`."""

from rawlab.console import run

if __name__ == "__main__":
    run()
