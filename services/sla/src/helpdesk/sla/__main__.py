"""python -m helpdesk.sla starts the SLA service."""

import asyncio

from helpdesk.sla.app import main


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()
