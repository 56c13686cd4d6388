"""python -m helpdesk.routing starts the routing service."""

import asyncio

from helpdesk.routing.app import main


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()
