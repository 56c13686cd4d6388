"""python -m helpdesk.notification starts the notification service."""

import asyncio

from helpdesk.notification.app import main


def run() -> None:
    asyncio.run(main())


if __name__ == "__main__":
    run()
