"""Interface texts of the coordinators' page in the languages of our coordinators. Pure data."""

from __future__ import annotations

UI_LANGUAGES = ("en", "pl", "sr", "sr-Cyrl", "sq", "ru")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Partnership suggestions", "login": "Log in", "logout": "Log out", "username": "Username",
        "password": "Password", "bad_login": "Wrong username or password.", "queue": "Pending",
        "history": "Decided", "score": "Score", "own_offers": "What {own} offers that {partner} seeks",
        "partner_offers": "What {partner} offers that {own} seeks", "shared": "Shared ground",
        "approve": "Approve", "reject": "Reject", "reason": "Reason", "comment": "Comment (optional)",
        "empty": "Nothing waiting for you.", "approved": "approved", "rejected": "rejected",
        "pending": "waiting for the other cluster", "saved": "Your decision is saved.",
        "already": "This suggestion was already decided.", "details": "Both profiles",
        "capabilities": "Offers", "goals": "Seeks", "cluster": "Cluster", "country": "Country", "language": "Language",
        "r_not_relevant": "Not relevant", "r_already_partners": "Already partners",
        "r_different_markets": "Different markets", "r_no_capacity": "No capacity now", "r_other": "Other",
        "session_expired": "Please log in again.", "back": "Back to the queue",
    },
    "pl": {
        "title": "Propozycje partnerstw", "login": "Zaloguj", "logout": "Wyloguj", "username": "Login",
        "password": "Hasło", "bad_login": "Błędny login lub hasło.", "queue": "Oczekujące",
        "history": "Rozstrzygnięte", "score": "Wynik", "own_offers": "Co {own} oferuje, a {partner} szuka",
        "partner_offers": "Co {partner} oferuje, a {own} szuka", "shared": "Wspólne obszary",
        "approve": "Zatwierdź", "reject": "Odrzuć", "reason": "Powód", "comment": "Komentarz (opcjonalnie)",
        "empty": "Nic nie czeka na decyzję.", "approved": "zatwierdzona", "rejected": "odrzucona",
        "pending": "czeka na drugi klaster", "saved": "Decyzja zapisana.",
        "already": "Ta propozycja została już rozstrzygnięta.", "details": "Oba profile",
        "capabilities": "Oferuje", "goals": "Szuka", "cluster": "Klaster", "country": "Kraj", "language": "Język",
        "r_not_relevant": "Nietrafiona", "r_already_partners": "Już współpracują",
        "r_different_markets": "Inne rynki", "r_no_capacity": "Brak możliwości teraz", "r_other": "Inny",
        "session_expired": "Zaloguj się ponownie.", "back": "Wróć do listy",
    },
    "sr": {
        "title": "Predlozi partnerstava", "login": "Prijava", "logout": "Odjava", "username": "Korisničko ime",
        "password": "Lozinka", "bad_login": "Pogrešno korisničko ime ili lozinka.", "queue": "Na čekanju",
        "history": "Odlučeno", "score": "Ocena", "own_offers": "Šta {own} nudi, a {partner} traži",
        "partner_offers": "Šta {partner} nudi, a {own} traži", "shared": "Zajednička oblast",
        "approve": "Odobri", "reject": "Odbij", "reason": "Razlog", "comment": "Komentar (nije obavezno)",
        "empty": "Ništa ne čeka na odluku.", "approved": "odobreno", "rejected": "odbijeno",
        "pending": "čeka drugi klaster", "saved": "Odluka je sačuvana.",
        "already": "O ovom predlogu je već odlučeno.", "details": "Oba profila",
        "capabilities": "Nudi", "goals": "Traži", "cluster": "Klaster", "country": "Zemlja", "language": "Jezik",
        "r_not_relevant": "Nije relevantno", "r_already_partners": "Već sarađuju",
        "r_different_markets": "Različita tržišta", "r_no_capacity": "Trenutno bez kapaciteta", "r_other": "Drugo",
        "session_expired": "Prijavite se ponovo.", "back": "Nazad na listu",
    },
    "sr-Cyrl": {
        "title": "Предлози партнерстава", "login": "Пријава", "logout": "Одјава", "username": "Корисничко име",
        "password": "Лозинка", "bad_login": "Погрешно корисничко име или лозинка.", "queue": "На чекању",
        "history": "Одлучено", "score": "Оцена", "own_offers": "Шта {own} нуди, а {partner} тражи",
        "partner_offers": "Шта {partner} нуди, а {own} тражи", "shared": "Заједничка област",
        "approve": "Одобри", "reject": "Одбиј", "reason": "Разлог", "comment": "Коментар (није обавезно)",
        "empty": "Ништа не чека на одлуку.", "approved": "одобрено", "rejected": "одбијено",
        "pending": "чека други кластер", "saved": "Одлука је сачувана.",
        "already": "О овом предлогу је већ одлучено.", "details": "Оба профила",
        "capabilities": "Нуди", "goals": "Тражи", "cluster": "Кластер", "country": "Земља", "language": "Језик",
        "r_not_relevant": "Није релевантно", "r_already_partners": "Већ сарађују",
        "r_different_markets": "Различита тржишта", "r_no_capacity": "Тренутно без капацитета", "r_other": "Друго",
        "session_expired": "Пријавите се поново.", "back": "Назад на листу",
    },
    "sq": {
        "title": "Propozime partneriteti", "login": "Hyr", "logout": "Dil", "username": "Emri i përdoruesit",
        "password": "Fjalëkalimi", "bad_login": "Emër ose fjalëkalim i gabuar.", "queue": "Në pritje",
        "history": "Të vendosura", "score": "Pikët", "own_offers": "Çfarë ofron {own} që kërkon {partner}",
        "partner_offers": "Çfarë ofron {partner} që kërkon {own}", "shared": "Fusha të përbashkëta",
        "approve": "Mirato", "reject": "Refuzo", "reason": "Arsyeja", "comment": "Koment (opsional)",
        "empty": "Asgjë nuk pret vendimin tuaj.", "approved": "miratuar", "rejected": "refuzuar",
        "pending": "pret klasterin tjetër", "saved": "Vendimi u ruajt.",
        "already": "Për këtë propozim është vendosur tashmë.", "details": "Të dy profilet",
        "capabilities": "Ofron", "goals": "Kërkon", "cluster": "Klasteri", "country": "Vendi", "language": "Gjuha",
        "r_not_relevant": "Jo e rëndësishme", "r_already_partners": "Janë tashmë partnerë",
        "r_different_markets": "Tregje të ndryshme", "r_no_capacity": "Pa kapacitet tani", "r_other": "Tjetër",
        "session_expired": "Ju lutemi hyni përsëri.", "back": "Kthehu te lista",
    },
    "ru": {
        "title": "Предложения о партнёрстве", "login": "Войти", "logout": "Выйти", "username": "Логин",
        "password": "Пароль", "bad_login": "Неверный логин или пароль.", "queue": "Ожидают решения",
        "history": "Решённые", "score": "Оценка", "own_offers": "Что {own} предлагает, а {partner} ищет",
        "partner_offers": "Что {partner} предлагает, а {own} ищет", "shared": "Общие области",
        "approve": "Одобрить", "reject": "Отклонить", "reason": "Причина", "comment": "Комментарий (необязательно)",
        "empty": "Нет предложений, ожидающих решения.", "approved": "одобрено", "rejected": "отклонено",
        "pending": "ждёт решения другого кластера", "saved": "Решение сохранено.",
        "already": "По этому предложению уже принято решение.", "details": "Оба профиля",
        "capabilities": "Предлагает", "goals": "Ищет", "cluster": "Кластер", "country": "Страна", "language": "Язык",
        "r_not_relevant": "Не подходит", "r_already_partners": "Уже партнёры",
        "r_different_markets": "Разные рынки", "r_no_capacity": "Сейчас нет возможности", "r_other": "Другое",
        "session_expired": "Войдите снова.", "back": "К списку",
    },
}


def texts(lang: str) -> dict[str, str]:
    """The page's texts in `lang`, English for anything missing."""
    return {**TEXT["en"], **TEXT.get(lang, {})}
