"""The BAS accounts, cost centres and projects every seeded company starts with."""

from __future__ import annotations

from sandbox.model import Account

# number, description, SRU, active
_BAS: tuple[tuple[int, str, int, bool], ...] = (
    (1220, "Inventarier och verktyg", 7215, True),
    (1229, "Ackumulerade avskrivningar på inventarier och verktyg", 7215, True),
    (1250, "Datorer", 7215, False),
    (1510, "Kundfordringar", 7251, True),
    (1630, "Avräkning för skatter och avgifter (skattekonto)", 7261, True),
    (1910, "Kassa", 7281, False),
    (1930, "Företagskonto/checkkonto/affärskonto", 7281, True),
    (2081, "Aktiekapital", 7301, True),
    (2091, "Balanserad vinst eller förlust", 7302, True),
    (2099, "Årets resultat", 7302, True),
    (2440, "Leverantörsskulder", 7365, True),
    (2611, "Utgående moms på försäljning inom Sverige, 25 %", 7369, True),
    (2641, "Debiterad ingående moms", 7369, True),
    (2710, "Personalskatt", 7369, True),
    (2731, "Avräkning lagstadgade sociala avgifter", 7369, True),
    (3001, "Försäljning inom Sverige, 25 % moms", 7410, True),
    (3041, "Försäljning tjänster inom Sverige, 25 % moms", 7410, True),
    (3108, "Försäljning varor till annat EU-land, momsfri", 7410, True),
    (3960, "Valutakursvinster på fordringar och skulder av rörelsekaraktär", 7410, True),
    (3990, "Övriga ersättningar och intäkter", 7413, True),
    (4010, "Inköp material och varor", 7511, True),
    (5010, "Lokalhyra", 7513, True),
    (5410, "Förbrukningsinventarier", 7513, True),
    (5611, "Drivmedel för personbilar", 7513, False),
    (6110, "Kontorsmateriel", 7513, True),
    (6212, "Mobiltelefon", 7513, True),
    (6230, "Datakommunikation", 7513, True),
    (6570, "Bankkostnader", 7513, True),
    (7010, "Löner till kollektivanställda", 7514, True),
    (7510, "Arbetsgivaravgifter 31,42 %", 7514, True),
    (7832, "Avskrivningar på inventarier och verktyg", 7515, True),
    (7960, "Valutakursförluster på fordringar och skulder av rörelsekaraktär", 7513, True),
    (8310, "Ränteintäkter från omsättningstillgångar", 7417, True),
    (8999, "Årets resultat", 7450, True),
)

COST_CENTERS: tuple[tuple[str, str], ...] = (
    ("100", "Försäljning"),
    ("200", "Administration"),
    ("300", "Utveckling"),
)
PROJECTS: tuple[tuple[str, str], ...] = (
    ("P1001", "Webbplats"),
    ("P1002", "Mässa Göteborg"),
    ("P1003", "Kundportal"),
    ("P1004", "Lageröversyn"),
)


def bas_accounts() -> dict[int, Account]:
    """A fresh chart (callers may change ``Active`` per company)."""
    return {
        number: Account(number, text, active, sru, "MP1" if number in (3001, 3041) else "")
        for number, text, sru, active in _BAS
    }
