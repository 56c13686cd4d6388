"""Knowledge search on a large knowledge base: index build time and search latency, in process.

    .venv/bin/python -m benchmarks.knowledge_search     (--help for the knobs)

Builds the knowledge service's in-memory index (helpdesk.knowledge.search.ArticleIndex) from
synthetic articles, half Russian and half English, then runs queries one at a time and
reports latency per kind:
  search    ArticleIndex.search with default filters (published only), a page of 10 with
            snippets and highlights: what the portal and the agent's search box do
  filtered  the same with a category and visibility filter
  suggest   ArticleIndex.suggest with a subject and a few sentences of description: what
            runs while a ticket is filed
Queries are 1-4 words: words of an article's title in another form ("почтой" for "почта",
"printers" for "printer"), frequent and rare words, and Russian mixed with English.
Articles use word families of a help desk's vocabulary plus a long tail of rarer words
(product codes, host names), drawn with Zipf-like weights so that posting lists range from
most of the index to a handful of articles. The target is p99 <= 50 ms for search at
100,000 articles. Prints a table and writes JSON (default .local/bench/knowledge-search.json).
"""

import argparse
import itertools
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.launcher import LOCAL_DIR
from benchmarks.run import percentiles_ms
from helpdesk.knowledge.domain.articles import Article, ArticleStatus, Language, Visibility
from helpdesk.knowledge.search import ArticleIndex, SearchFilters

TARGET_ARTICLES, TARGET_P99_MS = 100_000, 50.0
WARM_UP = 50
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

# Word families: the forms a requester may type for one word.
RU_FAMILIES = [
    ("почта", "почту", "почтой", "почты", "почте"),
    ("принтер", "принтера", "принтеры", "принтеру", "принтером"),
    ("пароль", "пароля", "паролем", "пароли"),
    ("сеть", "сети", "сетью", "сетевой"),
    ("ошибка", "ошибку", "ошибки", "ошибкой"),
    ("доступ", "доступа", "доступом"),
    ("папка", "папку", "папки", "папкой"),
    ("учётная", "учётной", "учетную", "учётные"),
    ("запись", "записи", "записью"),
    ("работает", "работать", "работа", "работу"),
    ("открывается", "открыть", "открытие"),
    ("подключение", "подключиться", "подключается", "подключения"),
    ("обновление", "обновления", "обновить", "обновлением"),
    ("компьютер", "компьютера", "компьютеры", "компьютером"),
    ("ноутбук", "ноутбука", "ноутбуки", "ноутбуком"),
    ("телефон", "телефона", "телефоне", "телефоном"),
    ("камера", "камеру", "камеры", "камерой"),
    ("микрофон", "микрофона", "микрофоном"),
    ("экран", "экрана", "экраны", "экраном"),
    ("клавиатура", "клавиатуру", "клавиатуры"),
    ("бумага", "бумагу", "бумаги", "бумагой"),
    ("печать", "печати", "печатает", "печатать"),
    ("сканер", "сканера", "сканером", "сканирование"),
    ("письмо", "письма", "письмом", "писем"),
    ("вложение", "вложения", "вложением"),
    ("календарь", "календаря", "календаре"),
    ("встреча", "встречу", "встречи"),
    ("сервер", "сервера", "серверы", "сервером"),
    ("программа", "программу", "программы", "программой"),
    ("установка", "установить", "установки", "установлен"),
    ("настройка", "настройки", "настроить", "настройку"),
    ("отчёт", "отчёта", "отчёты", "отчетов"),
    ("договор", "договора", "договоры", "договором"),
    ("отпуск", "отпуска", "отпуске"),
    ("зарплата", "зарплату", "зарплаты"),
    ("пропуск", "пропуска", "пропуском"),
    ("медленно", "медленный", "медленная"),
    ("зависает", "зависание", "зависла"),
    ("удалить", "удаление", "удалены"),
    ("восстановить", "восстановление", "восстановления"),
]
EN_FAMILIES = [
    ("mail", "mails", "mailbox", "mailing"),
    ("printer", "printers", "printing", "print"),
    ("password", "passwords"),
    ("network", "networks", "networking"),
    ("error", "errors"),
    ("access", "accessing", "accessed"),
    ("folder", "folders"),
    ("account", "accounts"),
    ("work", "working", "works", "worked"),
    ("open", "opening", "opens", "opened"),
    ("connect", "connection", "connecting", "connected"),
    ("update", "updates", "updating", "updated"),
    ("computer", "computers"),
    ("laptop", "laptops"),
    ("phone", "phones"),
    ("camera", "cameras"),
    ("microphone", "microphones"),
    ("screen", "screens"),
    ("keyboard", "keyboards"),
    ("paper", "papers"),
    ("jam", "jammed", "jams", "jamming"),
    ("scanner", "scanners", "scanning", "scan"),
    ("attachment", "attachments"),
    ("calendar", "calendars"),
    ("meeting", "meetings"),
    ("server", "servers"),
    ("install", "installing", "installation", "installed"),
    ("setting", "settings"),
    ("report", "reports", "reporting"),
    ("contract", "contracts"),
    ("vacation", "vacations"),
    ("salary", "salaries"),
    ("badge", "badges"),
    ("slow", "slowly", "slowness"),
    ("freeze", "freezes", "freezing", "frozen"),
    ("delete", "deleted", "deleting"),
    ("restore", "restoring", "restored"),
    ("reset", "resetting", "resets"),
    ("crash", "crashes", "crashed", "crashing"),
    ("sync", "syncing", "synchronisation"),
]
# Product and system names both languages use.
SHARED = ["outlook", "vpn", "teams", "excel", "windows", "wi-fi", "sap", "1c", "zoom", "jira"]
RU_GLUE = ["не", "и", "в", "на", "с", "что", "как", "после", "при", "если", "для", "у", "из"]
EN_GLUE = ["the", "a", "to", "is", "not", "and", "in", "after", "when", "if", "for", "my", "of"]
CATEGORIES = [
    f"{top}/{sub}"
    for top, subs in {
        "email": ["outlook", "mobile", "calendar", "mailbox"],
        "network": ["vpn", "wifi", "proxy"],
        "hardware": ["printers", "laptops", "phones", "peripherals"],
        "software": ["office", "teams", "erp", "browsers"],
        "accounts": ["passwords", "access"],
        "hr": ["vacation", "payroll", "onboarding"],
        "facilities": ["badges", "rooms"],
    }.items()
    for sub in subs
]


def zipf_cumulative(n: int, exponent: float) -> list[float]:
    """Cumulative weights of ranks 1..n for random.choices (given once, not per draw)."""
    return list(itertools.accumulate(1.0 / (rank**exponent) for rank in range(1, n + 1)))


class Vocabulary:
    """Words of one language with their weights: families first, then the long tail."""

    def __init__(self, language: Language, families: Sequence[Sequence[str]], tail: int) -> None:
        rng = random.Random(f"vocabulary-{language}")
        letters = "абвгдеклмнопрстуя" if language == Language.RU else "abcdefghiklmnoprstuy"
        self.families = [list(family) for family in families]
        self.glue = RU_GLUE if language == Language.RU else EN_GLUE
        self.tail = [
            "".join(rng.choice(letters) for _ in range(rng.randint(5, 10)))
            + (str(rng.randint(1, 999)) if rng.random() < 0.2 else "")
            for _ in range(tail)
        ]
        self.family_weights = zipf_cumulative(len(self.families), 0.8)
        self.tail_weights = zipf_cumulative(len(self.tail), 1.05)

    def family(self, rng: random.Random) -> list[str]:
        return rng.choices(self.families, cum_weights=self.family_weights)[0]

    def words(self, rng: random.Random, count: int) -> list[str]:
        """Running text: a third family words in any form, some glue, the rest the tail."""
        kinds = rng.choices(("family", "glue", "tail", "shared"), (33, 25, 38, 4), k=count)
        tail = iter(rng.choices(self.tail, cum_weights=self.tail_weights, k=count))
        out = []
        for kind in kinds:
            if kind == "family":
                out.append(rng.choice(self.family(rng)))
            elif kind == "glue":
                out.append(rng.choice(self.glue))
            elif kind == "shared":
                out.append(rng.choice(SHARED))
            else:
                out.append(next(tail))
        return out


def synthetic_article(
    n: int, vocabularies: dict[Language, Vocabulary], rng: random.Random
) -> Article:
    language = Language.RU if n % 2 == 0 else Language.EN
    vocabulary = vocabularies[language]
    title_words = [rng.choice(vocabulary.family(rng)) for _ in range(rng.randint(2, 4))]
    if rng.random() < 0.3:
        title_words.insert(rng.randrange(len(title_words) + 1), rng.choice(SHARED))
    sentences = []
    for _ in range(rng.randint(5, 12)):
        words = vocabulary.words(rng, rng.randint(8, 16))
        sentences.append(" ".join(words).capitalize() + ".")
    status = rng.choices(
        (ArticleStatus.PUBLISHED, ArticleStatus.DRAFT, ArticleStatus.ARCHIVED), (85, 10, 5)
    )[0]
    moment = EPOCH + timedelta(minutes=7 * n)
    return Article(
        id=f"bench-{n:06d}",
        title=" ".join(title_words).capitalize(),
        body=" ".join(sentences),
        language=language,
        category=rng.choice(CATEGORIES),
        tags=tuple(rng.sample(SHARED, rng.randint(0, 2))),
        visibility=Visibility.PUBLIC if rng.random() < 0.7 else Visibility.INTERNAL,
        status=status,
        author="bench",
        version=0 if status == ArticleStatus.DRAFT else 1,
        created_at=moment,
        updated_at=moment,
    )


def other_form(word: str, vocabulary: Vocabulary, rng: random.Random) -> str:
    """Another word of the same family, as a requester would type it."""
    for family in vocabulary.families:
        if word.lower() in family:
            return rng.choice(family)
    return word


def synthetic_query(
    articles: Sequence[Article], vocabularies: dict[Language, Vocabulary], rng: random.Random
) -> str:
    kind = rng.choices(("title", "words", "mixed", "rare"), (45, 25, 20, 10))[0]
    if kind == "title":
        article = rng.choice(articles)
        vocabulary = vocabularies[article.language]
        words = article.title.split()
        picked = rng.sample(words, min(len(words), rng.randint(1, 3)))
        return " ".join(other_form(word, vocabulary, rng) for word in picked)
    if kind == "words":
        vocabulary = vocabularies[rng.choice(list(Language))]
        words = [rng.choice(vocabulary.family(rng)) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.5:
            words.insert(0, rng.choice(vocabulary.glue))
        return " ".join(words)
    if kind == "mixed":
        ru, en = vocabularies[Language.RU], vocabularies[Language.EN]
        return " ".join(
            [rng.choice(ru.glue), rng.choice(ru.family(rng)), rng.choice(SHARED)]
            + ([rng.choice(en.family(rng))] if rng.random() < 0.5 else [])
        )
    vocabulary = vocabularies[rng.choice(list(Language))]
    return " ".join(rng.sample(vocabulary.tail[:5000], rng.randint(1, 2)))


def measure(calls: Sequence[Callable[[], int]]) -> dict[str, Any]:
    """Latency of each call, after a warm-up; each returns how many results it gave."""
    for call in calls[:WARM_UP]:
        call()
    latencies: list[float] = []
    results = 0
    empty = 0
    for call in calls:
        started = time.perf_counter()
        found = call()
        latencies.append(time.perf_counter() - started)
        results += found
        empty += found == 0
    return {
        "queries": len(calls),
        **percentiles_ms(latencies),
        "mean_ms": round(1000 * sum(latencies) / len(latencies), 2),
        "results_per_query": round(results / len(calls), 2),
        "empty_share": round(empty / len(calls), 3),
    }


def max_rss_mb() -> float:
    # Kilobytes on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    vocabularies = {
        Language.RU: Vocabulary(Language.RU, RU_FAMILIES, args.tail),
        Language.EN: Vocabulary(Language.EN, EN_FAMILIES, args.tail),
    }
    print(f"generating {args.articles:,} articles ...", flush=True)
    started = time.perf_counter()
    articles = [synthetic_article(n, vocabularies, rng) for n in range(args.articles)]
    generated = time.perf_counter() - started
    words = sum(len(a.title.split()) + len(a.body.split()) for a in articles)
    rss_before = max_rss_mb()

    print("building the index ...", flush=True)
    started = time.perf_counter()
    index = ArticleIndex(articles)
    build = time.perf_counter() - started

    # Freshness: an article event replaces one article (and commits), as the handler does.
    updates = []
    for _ in range(args.updates):
        changed = articles[rng.randrange(len(articles))]
        changed = replace(changed, title=f"{changed.title} {rng.choice(SHARED)}")
        started = time.perf_counter()
        index.add_or_replace(changed)
        updates.append(time.perf_counter() - started)

    queries = [synthetic_query(articles, vocabularies, rng) for _ in range(args.queries)]
    filters = [
        SearchFilters(category=rng.choice(CATEGORIES).split("/")[0], visibility=Visibility.PUBLIC)
        for _ in queries
    ]
    tickets = []
    for _ in range(args.suggestions):
        language = rng.choice(list(Language))
        vocabulary = vocabularies[language]
        subject = " ".join(rng.choice(vocabulary.family(rng)) for _ in range(rng.randint(2, 5)))
        description = " ".join(vocabulary.words(rng, rng.randint(20, 60)))
        tickets.append((subject, description, language))

    print(f"running {len(queries)} searches, filtered and not, and {len(tickets)} suggestions")
    kinds = {
        "search": measure([lambda q=q: len(index.search(q).hits) for q in queries]),
        "filtered": measure(
            [
                lambda q=q, f=f: len(index.search(q, f).hits)
                for q, f in zip(queries, filters, strict=True)
            ]
        ),
        "suggest": measure([lambda t=t: len(index.suggest(t[0], t[1], t[2])) for t in tickets]),
    }
    return {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "settings": {**vars(args), "out": str(args.out)},
        "articles": args.articles,
        "words": words,
        "generate_seconds": round(generated, 1),
        "build_seconds": round(build, 2),
        "build_articles_per_second": round(args.articles / build),
        "add_or_replace": {"events": len(updates), **percentiles_ms(updates)},
        "max_rss_mb": {"before_index": rss_before, "after": max_rss_mb()},
        "kinds": kinds,
        "examples": queries[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=TARGET_ARTICLES)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--suggestions", type=int, default=300)
    parser.add_argument("--updates", type=int, default=100, help="add_or_replace events")
    parser.add_argument("--tail", type=int, default=50_000, help="rare words per language")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "knowledge-search.json")
    args = parser.parse_args(argv)
    results = benchmark(args)

    print(
        f"\n{results['articles']:,} articles ({results['words']:,} words): index built in "
        f"{results['build_seconds']:.1f} s ({results['build_articles_per_second']:,}/s); "
        f"add_or_replace p50 {results['add_or_replace']['p50_ms']:.1f} ms, "
        f"p99 {results['add_or_replace']['p99_ms']:.1f} ms; "
        f"max RSS {results['max_rss_mb']['before_index']} MB before the index, "
        f"{results['max_rss_mb']['after']} MB after"
    )
    print(f"{'kind':9} {'queries':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, figures in results["kinds"].items():
        print(
            f"{kind:9} {figures['queries']:>8} {figures['p50_ms']:>8.2f} "
            f"{figures['p95_ms']:>8.2f} {figures['p99_ms']:>8.2f} {figures['max_ms']:>8.2f}"
        )
    p99 = results["kinds"]["search"]["p99_ms"]
    met = results["articles"] >= TARGET_ARTICLES and p99 <= TARGET_P99_MS
    print(
        f"target {TARGET_ARTICLES:,} articles with search p99 <= {TARGET_P99_MS:g} ms: "
        f"{'met' if met else 'not met'} ({os.cpu_count()} CPUs)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
