"""python -m helpdesk.knowledge starts the knowledge base."""

import asyncio

from helpdesk.knowledge.app import main


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()
