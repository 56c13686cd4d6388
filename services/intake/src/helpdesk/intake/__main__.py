"""python -m helpdesk.intake starts the intake service."""

import asyncio

from helpdesk.intake.app import main


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()
