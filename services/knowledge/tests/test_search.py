"""Search: relevance on a small labelled corpus in Russian and English, filters, freshness from
events, snippets, suggestions, and text that is never syntax."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.knowledge.domain.articles import Article, ArticleStatus, Language, Visibility
from helpdesk.knowledge.search import ArticleIndex, SearchFilters

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PUBLISHED = ArticleStatus.PUBLISHED


def article(
    article_id: str,
    language: str,
    title: str,
    body: str,
    category: str = "",
    tags: tuple[str, ...] = (),
    *,
    visibility: Visibility = Visibility.PUBLIC,
    status: ArticleStatus = PUBLISHED,
    age_days: int = 0,
) -> Article:
    moment = NOW - timedelta(days=age_days)
    return Article(
        id=article_id,
        title=title,
        body=body,
        language=Language(language),
        category=category,
        tags=tags,
        visibility=visibility,
        status=status,
        author="anna",
        version=0 if status == ArticleStatus.DRAFT else 1,
        created_at=moment,
        updated_at=moment,
    )


# A help desk's knowledge base in miniature: several articles share the generic words of a
# complaint ("не работает", "does not"), a few share the topic, one is the answer.
CORPUS = (
    article(
        "mail-does-not-open",
        "ru",
        "Почта не открывается: что делать",
        "Если Outlook зависает при запуске или сразу закрывается, запустите его в безопасном "
        "режиме (outlook.exe /safe) и отключите надстройки. Если и это не помогло, создайте "
        "новый профиль в «Панели управления → Почта».",
        "email/outlook",
        ("outlook", "почта"),
        age_days=30,
    ),
    article(
        "mail-on-phone",
        "ru",
        "Как настроить почту на телефоне",
        "Откройте настройки телефона, добавьте учётную запись Exchange и укажите сервер "
        "mail.example.com. Логин и пароль те же, что для входа в компьютер.",
        "email/mobile",
        ("почта", "телефон"),
        age_days=20,
    ),
    article(
        "mailbox-full",
        "ru",
        "Почтовый ящик переполнен",
        "Когда ящик заполнен, новые письма не доставляются. Удалите старые письма с вложениями "
        "или перенесите их в архив.",
        "email/outlook",
        ("почта",),
        age_days=10,
    ),
    article(
        "vpn-after-update",
        "ru",
        "Не работает VPN после обновления Windows",
        "Если VPN-клиент не подключается после обновления, переустановите клиент с портала и "
        "перезагрузите компьютер.",
        "network/vpn",
        ("vpn",),
        age_days=40,
    ),
    article(
        "printer-not-printing",
        "ru",
        "Не работает принтер: задания висят в очереди",
        "Проверьте, включён ли принтер и есть ли бумага. Очистите очередь печати и "
        "перезапустите службу «Диспетчер печати».",
        "hardware/printers",
        ("принтер",),
        age_days=50,
    ),
    article(
        "camera-teams",
        "ru",
        "Не работает камера в Teams",
        "Закройте другие программы, которые используют камеру, и выберите нужную камеру в "
        "настройках Teams.",
        "software/teams",
        ("teams",),
        age_days=60,
    ),
    article(
        "wifi-meeting-room",
        "ru",
        "Не работает Wi-Fi в переговорной",
        "Подключитесь к сети Guest, если сеть Office не видна, и сообщите номер комнаты.",
        "network/wifi",
        ("wifi",),
        age_days=65,
    ),
    article(
        "scanner-not-working",
        "ru",
        "Не работает сканер на МФУ",
        "Сканирование в папку требует входа по карте. Приложите пропуск к считывателю.",
        "hardware/printers",
        ("сканер",),
        age_days=75,
    ),
    article(
        "password-reset-ru",
        "ru",
        "Сброс пароля учётной записи",
        "Пароль можно сбросить на портале самообслуживания. Ссылка для сброса придёт на вашу "
        "личную почту, указанную в профиле.",
        "accounts",
        ("пароль",),
        age_days=70,
    ),
    article(
        "shared-folders",
        "ru",
        "Общие папки отдела",
        "Общие папки подключаются автоматически при входе. Для работы с папкой другого отдела "
        "попросите доступ у руководителя.",
        "files",
        ("папки",),
        visibility=Visibility.INTERNAL,
        age_days=80,
    ),
    article(
        "printer-jam",
        "en",
        "Printer jam troubleshooting",
        "If paper is stuck, open the front tray, pull the jammed sheet out gently with both "
        "hands and close the tray. Do not use tools inside the printer.",
        "hardware/printers",
        ("printer",),
        age_days=35,
    ),
    article(
        "add-network-printer",
        "en",
        "Adding a network printer",
        "Open Settings, then Printers & scanners, and choose Add device. Pick the printer by "
        "its floor and room number.",
        "hardware/printers",
        ("printer",),
        age_days=45,
    ),
    article(
        "door-jammed",
        "en",
        "Jammed door in building B",
        "If the door to the server room is jammed, do not force it: call facilities on "
        "extension 5555.",
        "facilities",
        ("facilities",),
        age_days=55,
    ),
    article(
        "outlook-wont-start",
        "en",
        "Outlook does not start",
        "Start Outlook in safe mode (outlook.exe /safe) and disable add-ins. If it still "
        "fails, repair the mail profile.",
        "email/outlook",
        ("outlook",),
        age_days=5,
    ),
    article(
        "password-reset-en",
        "en",
        "Resetting your password",
        "Reset your password on the self-service portal; the link is sent to your personal e-mail.",
        "accounts",
        ("password",),
        age_days=15,
    ),
    article(
        "vpn-setup-en",
        "en",
        "Setting up the VPN client",
        "Install the VPN client from the portal and sign in with your usual account.",
        "network/vpn",
        ("vpn",),
        visibility=Visibility.INTERNAL,
        age_days=25,
    ),
    article(
        "mail-archive-draft",
        "ru",
        "Почта: архивирование писем",
        "Черновик: как настроить автоархивацию почты в Outlook.",
        "email/outlook",
        ("почта",),
        status=ArticleStatus.DRAFT,
        age_days=1,
    ),
    article(
        "old-mail-client",
        "ru",
        "Почта в старом почтовом клиенте The Bat",
        "Клиент The Bat больше не поддерживается: перейдите на Outlook.",
        "email",
        ("почта",),
        status=ArticleStatus.ARCHIVED,
        age_days=400,
    ),
)


@pytest.fixture(scope="module")
def index() -> ArticleIndex:
    return ArticleIndex(CORPUS)


def ranked(index: ArticleIndex, text: str, filters: SearchFilters | None = None) -> list[str]:
    return [hit.article.id for hit in index.search(text, filters or SearchFilters()).hits]


def substring_hits(text: str) -> list[str]:
    needle = text.lower()
    return [a.id for a in CORPUS if needle in f"{a.title}\n{a.body}".lower()]


# --- relevance ---


@pytest.mark.parametrize(
    ("query", "expected_top"),
    [
        # The topic word outranks the generic complaint shared by other articles.
        ("не работает почта", ["mail-does-not-open", "mail-on-phone"]),
        # Plural and past tense meet singular and noun; the printer is the topic, the jam
        # the detail, so a jammed door comes after both printer articles.
        ("printers jammed", ["printer-jam", "add-network-printer", "door-jammed"]),
        # "сбросить" meets "сброс", "пароль" meets "пароля".
        ("как сбросить пароль", ["password-reset-ru"]),
        ("resetting passwords", ["password-reset-en"]),
        # A requester types е for ё.
        ("учетной записи", ["password-reset-ru", "mail-on-phone"]),
        ("принтеры не печатают", ["printer-not-printing"]),
        ("VPN не подключается", ["vpn-after-update", "vpn-setup-en"]),
    ],
)
def test_ranking(index: ArticleIndex, query: str, expected_top: list[str]) -> None:
    # None of these would be found by looking for the query as it was typed.
    assert substring_hits(query) == []
    assert ranked(index, query)[: len(expected_top)] == expected_top


@pytest.mark.parametrize("form", ["почта", "почту", "почтой", "почте", "ПОЧТЫ"])
def test_a_russian_word_form_finds_the_same_articles(index: ArticleIndex, form: str) -> None:
    assert ranked(index, form) == ["mail-does-not-open", "mail-on-phone", "password-reset-ru"]


def test_a_mixed_language_query_searches_both_languages(index: ArticleIndex) -> None:
    top = ranked(index, "Outlook зависает при запуске")[:2]
    assert set(top) == {"outlook-wont-start", "mail-does-not-open"}


def test_an_english_word_in_a_russian_article_is_stemmed_as_english() -> None:
    index = ArticleIndex(
        [article("printers-ru", "ru", "Сетевые принтеры", "Список: network printers, scanners.")]
    )
    assert ranked(index, "network printer") == ["printers-ru"]


def test_the_title_counts_for_more_than_the_body() -> None:
    index = ArticleIndex(
        [
            article("in-body", "en", "Account settings", "How to change the VPN password."),
            article("in-title", "en", "VPN password", "How to change it in your settings."),
        ]
    )
    assert ranked(index, "vpn password") == ["in-title", "in-body"]


def test_words_that_say_nothing_find_nothing(index: ArticleIndex) -> None:
    assert index.search("не и в the is").hits == ()


# --- filters ---


def test_only_published_articles_by_default(index: ArticleIndex) -> None:
    found = ranked(index, "почта")
    assert "mail-archive-draft" not in found
    assert "old-mail-client" not in found


def test_statuses_can_be_chosen(index: ArticleIndex) -> None:
    drafts = SearchFilters(statuses=frozenset({ArticleStatus.DRAFT}))
    assert ranked(index, "почта", drafts) == ["mail-archive-draft"]
    every = SearchFilters(statuses=frozenset(ArticleStatus))
    assert {"mail-archive-draft", "old-mail-client"} <= set(ranked(index, "почта", every))


def test_a_category_takes_its_subcategories(index: ArticleIndex) -> None:
    email = ranked(index, "почта outlook", SearchFilters(category="email"))
    assert set(email) == {"mail-does-not-open", "mail-on-phone", "outlook-wont-start"}
    outlook = ranked(index, "почта outlook", SearchFilters(category="/Email/Outlook/"))
    assert set(outlook) == {"mail-does-not-open", "outlook-wont-start"}
    # A prefix of a category's name is not its parent.
    assert ranked(index, "почта outlook", SearchFilters(category="em")) == []


def test_tag_language_and_visibility_filters(index: ArticleIndex) -> None:
    assert ranked(index, "vpn", SearchFilters(tag="VPN")) == ["vpn-after-update", "vpn-setup-en"]
    assert ranked(index, "vpn", SearchFilters(language=Language.EN)) == ["vpn-setup-en"]
    public = SearchFilters(visibility=Visibility.PUBLIC)
    assert ranked(index, "vpn", public) == ["vpn-after-update"]
    internal = SearchFilters(visibility=Visibility.INTERNAL)
    assert ranked(index, "vpn", internal) == ["vpn-setup-en"]


def test_filters_choose_the_same_whether_few_or_many_pass() -> None:
    # 120 matches: a filter most pass is applied to the best unfiltered matches, a filter
    # few pass is run with the query; both must give the best of what passes.
    statuses = list(ArticleStatus)
    languages = list(Language)
    categories = ["email/outlook", "email", "network/vpn", "emailing"]
    many = [
        article(
            f"a{i:03d}",
            languages[i % 2].value,
            "VPN" if i % 5 == 0 else "Сеть",
            "vpn " + "текст " * i,
            categories[i % 4],
            ("rare",) if i % 37 == 0 else ("vpn",),
            visibility=Visibility.PUBLIC if i % 3 else Visibility.INTERNAL,
            status=statuses[i % 3],
        )
        for i in range(120)
    ]
    index = ArticleIndex(many)
    every = SearchFilters(statuses=frozenset(ArticleStatus))
    overall = [h.article for h in index.search("vpn", every, limit=100, offset=0).hits]
    overall += [h.article for h in index.search("vpn", every, limit=100, offset=100).hits]
    assert len(overall) == 120
    for filters in [
        SearchFilters(),
        SearchFilters(tag="rare", statuses=frozenset(ArticleStatus)),
        SearchFilters(category="email", visibility=Visibility.PUBLIC),
        SearchFilters(language=Language.EN, statuses=frozenset({ArticleStatus.ARCHIVED})),
        SearchFilters(category="network", tag="rare", statuses=frozenset(ArticleStatus)),
    ]:
        expected = [
            a.id
            for a in overall
            if a.status in filters.statuses
            and (filters.language is None or a.language == filters.language)
            and (filters.visibility is None or a.visibility == filters.visibility)
            and (not filters.tag or filters.tag in a.tags)
            and (not filters.category or a.category.split("/")[0] == filters.category)
        ]
        assert expected
        assert ranked(index, "vpn", filters) == expected[:10], filters


def test_filters_alone_list_the_newest_first(index: ArticleIndex) -> None:
    results = index.search("", SearchFilters(category="email"))
    assert [hit.article.id for hit in results.hits] == [
        "outlook-wont-start",
        "mailbox-full",
        "mail-on-phone",
        "mail-does-not-open",
    ]
    assert not results.has_more


def test_pages(index: ArticleIndex) -> None:
    everything = ranked(index, "не работает почта")
    first = index.search("не работает почта", limit=2)
    second = index.search("не работает почта", limit=2, offset=2)
    assert len(everything) > 4
    assert first.has_more
    assert second.has_more
    assert [h.article.id for h in first.hits + second.hits] == everything[:4]
    last = index.search("не работает почта", limit=100, offset=len(everything) - 1)
    assert [h.article.id for h in last.hits] == everything[-1:]
    assert not last.has_more
    # A page size of zero is read as one.
    assert len(index.search("почта", limit=0).hits) == 1


# --- snippets and highlights ---


def test_snippets_highlight_the_matched_word_forms(index: ArticleIndex) -> None:
    hits = {hit.article.id: hit for hit in index.search("почту outlook").hits}
    hit = hits["mail-does-not-open"]
    title = hit.title
    assert title.text == "Почта не открывается: что делать"
    assert [title.text[a:b] for a, b in title.highlights] == ["Почта"]
    # The best 200 characters of the body: both mentions of Outlook.
    assert hit.snippet.text.startswith("Если Outlook зависает")
    assert hit.snippet.text.endswith("…")
    words = [hit.snippet.text[a:b] for a, b in hit.snippet.highlights]
    assert words == ["Outlook", "outlook"]


def test_a_long_body_is_cut_around_the_match() -> None:
    body = "Вступление. " * 40 + "Здесь про принтер и бумагу. " + "Заключение. " * 40
    index = ArticleIndex([article("long", "ru", "Разное", body)])
    snippet = index.search("принтеры").hits[0].snippet
    assert snippet.text.startswith("…")
    assert snippet.text.endswith("…")
    assert len(snippet.text) <= 210
    assert [snippet.text[a:b] for a, b in snippet.highlights] == ["принтер"]


def test_a_title_match_shows_the_opening_of_the_body(index: ArticleIndex) -> None:
    hit = index.search("переполнен").hits[0]
    assert hit.article.id == "mailbox-full"
    assert hit.snippet.text.startswith("Когда ящик заполнен")
    assert hit.snippet.highlights == ()


# --- freshness from events ---


def test_add_replace_and_remove() -> None:
    index = ArticleIndex()
    assert index.search("vpn").hits == ()
    draft = article("vpn", "ru", "VPN", "Черновик про VPN", status=ArticleStatus.DRAFT)
    index.add_or_replace(draft)
    assert index.search("vpn").hits == ()
    index.add_or_replace(replace(draft, status=PUBLISHED, title="VPN не подключается"))
    assert len(index) == 1
    hits = index.search("vpn").hits
    assert [h.article.title for h in hits] == ["VPN не подключается"]
    index.add_or_replace(replace(hits[0].article, status=ArticleStatus.ARCHIVED))
    assert index.search("vpn").hits == ()
    assert index.remove("vpn")
    assert not index.remove("vpn")
    assert "vpn" not in index
    everything = SearchFilters(statuses=frozenset(ArticleStatus))
    assert index.search("vpn", everything).hits == ()


def test_a_replaced_article_is_found_by_its_new_words_only() -> None:
    index = ArticleIndex([article("a1", "en", "Printer jam", "Open the tray.")])
    index.add_or_replace(article("a1", "ru", "Замятие бумаги", "Откройте лоток."))
    assert ranked(index, "printer") == []
    assert ranked(index, "бумага") == ["a1"]
    assert len(index) == 1


# --- suggestions while a ticket is filed ---


def test_suggestions_for_a_russian_ticket(index: ArticleIndex) -> None:
    suggestions = index.suggest(
        "Не работает почта", "Outlook закрывается сразу после запуска", Language.RU, limit=3
    )
    assert len(suggestions) == 3
    assert [s.article.id for s in suggestions[:2]] == ["mail-does-not-open", "mail-on-phone"]
    scores = [s.score for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0


def test_suggestions_leave_out_weak_matches(index: ArticleIndex) -> None:
    # "open" alone links this ticket to the printer articles; they are not suggested.
    suggestions = index.suggest(
        "Outlook won't start", "It closes right after I open it", Language.EN
    )
    assert [s.article.id for s in suggestions] == ["outlook-wont-start"]


def test_suggestions_in_another_language_fill_the_list(index: ArticleIndex) -> None:
    suggestions = index.suggest("Printer jam", "", Language.RU, limit=3)
    assert [s.article.id for s in suggestions] == [
        "printer-jam",
        "add-network-printer",
        "door-jammed",
    ]


def test_suggestions_in_the_tickets_language_come_first(index: ArticleIndex) -> None:
    # The English article scores higher (its title says Outlook), but the requester
    # writes Russian.
    suggestions = index.suggest("Outlook", "", Language.RU)
    assert [s.article.id for s in suggestions] == ["mail-does-not-open", "outlook-wont-start"]
    assert suggestions[0].score < suggestions[1].score


def test_suggestions_are_public_and_published_unless_asked(index: ArticleIndex) -> None:
    for_requester = index.suggest("VPN", "", Language.EN)
    assert [s.article.id for s in for_requester] == ["vpn-after-update"]
    for_agent = index.suggest("VPN", "", Language.EN, visibility=None)
    assert [s.article.id for s in for_agent] == ["vpn-setup-en", "vpn-after-update"]
    assert index.suggest("The Bat", "", Language.RU) == []


def test_nothing_to_suggest_for_an_empty_ticket(index: ArticleIndex) -> None:
    assert index.suggest("", "  ", Language.RU) == []
    assert index.suggest("почта", "", Language.RU, limit=0) == []


# --- text is never syntax ---


@pytest.mark.parametrize(
    "text",
    [
        'title:"(foo AND',
        "\\",
        "*",
        "AND OR NOT",
        "+- ^2 ~1 [a TO b] {x}",
        "почта\x00",
        "a" * 10_000,
        " ".join(str(i) for i in range(5_000)),
    ],
)
def test_query_syntax_is_just_text(index: ArticleIndex, text: str) -> None:
    index.search(text)
    index.suggest(text, text, Language.RU)


@pytest.mark.parametrize("value", ["\\", "a\\/b", "*", "//", "ё/й", "\x00", "x" * 10_000])
def test_filter_values_are_just_values(index: ArticleIndex, value: str) -> None:
    junk = SearchFilters(category=value, tag=value)
    assert index.search("почта", junk).hits == ()
    assert index.search("", junk).hits == ()


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_no_text_raises(index: ArticleIndex, text: str) -> None:
    results = index.search(text)
    assert len(results.hits) <= 10
