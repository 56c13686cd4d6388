"""The knowledge base on a running system: articles, search and suggestions.

knowledge_admin.py put-article '{"id": "vpn-tcp", "title": "VPN drops", "body": "...",
                                 "language": "en", "visibility": "public"}'  (create, publish)
knowledge_admin.py search "не работает почта" [--language ru] [--status draft]
knowledge_admin.py suggest --subject "VPN drops" [--description "..."] [--language en]
knowledge_admin.py versions <article id>
knowledge_admin.py figures <article id>
"""

import argparse
import asyncio
import json
import sys
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc

DEADLINE = 10
AGENT = common_pb2.Actor(id="admin", role=common_pb2.ACTOR_ROLE_AGENT)


async def run(args: argparse.Namespace) -> Any:
    async with grpc.aio.insecure_channel(args.knowledge) as channel:
        stub = knowledge_pb2_grpc.KnowledgeServiceStub(channel)
        if args.command == "put-article":
            content = ParseDict(json.loads(args.document), knowledge_pb2.ArticleContent())
            await stub.CreateArticle(
                knowledge_pb2.CreateArticleRequest(article=content, actor=AGENT), timeout=DEADLINE
            )
            return await stub.PublishArticle(
                knowledge_pb2.PublishArticleRequest(id=content.id, actor=AGENT), timeout=DEADLINE
            )
        if args.command == "search":
            return await stub.SearchArticles(
                knowledge_pb2.SearchArticlesRequest(
                    query=args.query, language=args.language, statuses=args.status
                ),
                timeout=DEADLINE,
            )
        if args.command == "suggest":
            return await stub.SuggestArticles(
                knowledge_pb2.SuggestArticlesRequest(
                    subject=args.subject, description=args.description, language=args.language
                ),
                timeout=DEADLINE,
            )
        if args.command == "versions":
            return await stub.ListArticleVersions(
                knowledge_pb2.ListArticleVersionsRequest(id=args.article_id), timeout=DEADLINE
            )
        return await stub.GetArticleFigures(
            knowledge_pb2.GetArticleFiguresRequest(article_id=args.article_id), timeout=DEADLINE
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--knowledge", default="127.0.0.1:50055", help="its gRPC address")
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser("put-article", help="create an article and publish it")
    put.add_argument("document", help="the article as JSON (ArticleContent's fields)")
    search = commands.add_parser("search", help="ranked full-text search")
    search.add_argument("query")
    search.add_argument("--language", default="", help="ru or en (default: both)")
    search.add_argument("--status", action="append", default=[], help="draft, archived, ...")
    suggest = commands.add_parser("suggest", help="articles for a ticket being filed")
    suggest.add_argument("--subject", required=True)
    suggest.add_argument("--description", default="")
    suggest.add_argument("--language", default="en")
    for name in ("versions", "figures"):
        commands.add_parser(name).add_argument("article_id")
    args = parser.parse_args()
    try:
        reply = asyncio.run(run(args))
    except (json.JSONDecodeError, ValueError) as error:
        print(f"not an article document: {error}", file=sys.stderr)
        return 2
    except grpc.RpcError as error:
        # INVALID_ARGUMENT names every bad field.
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            MessageToDict(reply, preserving_proto_field_name=True), indent=2, ensure_ascii=False
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
