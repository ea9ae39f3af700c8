"""Write ``sample_company.csv``, the made-up company of ``crier demo``.

Run ``python bot/data/make_sample_company.py`` after changing this script; the
output depends only on the script (fixed seed), so the CSV diff shows exactly
what changed. Five well-known people come first: the demo and the README use
them to show each role.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).with_name("sample_company.csv")
SEED = 20261127
COLUMNS = (
    "email", "name", "department", "location", "title", "timezone",
    "slack_id", "telegram_id", "teams_id", "roles",
)

TIMEZONES = {
    "Berlin": "Europe/Berlin",
    "London": "Europe/London",
    "New York": "America/New_York",
    "Singapore": "Asia/Singapore",
}

#: (email, name, department, location, title, roles)
WELL_KNOWN = (
    ("casey.comms@example.com", "Casey Morgan", "People", "London",
     "Communications Lead", "author:*"),
    ("avery.approver@example.com", "Avery Chen", "People", "Berlin",
     "Chief of Staff", "approver:*"),
    ("erin.eng@example.com", "Erin Park", "Engineering", "Berlin",
     "Engineering Manager", "author:Engineering;approver:Engineering"),
    ("sam.admin@example.com", "Sam Rivera", "Operations", "London",
     "IT Administrator", "admin"),
    ("hr.lead@example.com", "Harper Lee", "People", "New York",
     "Head of People", "author:*"),
)

#: Department -> (head count including the well-known people, weights of locations,
#: the head's title, weights of the other titles).
DEPARTMENTS: dict[str, tuple[int, dict[str, int], str, dict[str, int]]] = {
    "Engineering": (
        101, {"Berlin": 55, "London": 25, "New York": 20}, "VP Engineering",
        {"Engineering Manager": 5, "Staff Engineer": 4, "Senior Software Engineer": 20,
         "Software Engineer": 28, "Frontend Engineer": 10, "Backend Engineer": 10,
         "Site Reliability Engineer": 6, "QA Engineer": 5, "Data Engineer": 5,
         "Security Engineer": 3, "Engineering Intern": 3},
    ),
    "Sales": (
        58, {"New York": 45, "London": 35, "Berlin": 12, "Singapore": 8}, "VP Sales",
        {"Sales Director": 3, "Account Executive": 22, "Sales Development Representative": 15,
         "Solutions Engineer": 6, "Sales Operations Analyst": 3},
    ),
    "Marketing": (
        32, {"London": 45, "New York": 35, "Berlin": 20}, "Head of Marketing",
        {"Product Marketing Manager": 5, "Content Marketing Manager": 4, "Growth Marketer": 6,
         "Brand Designer": 4, "Marketing Coordinator": 6, "SEO Specialist": 2,
         "Events Manager": 2},
    ),
    "Customer Success": (
        48, {"London": 35, "New York": 30, "Berlin": 25, "Singapore": 10},
        "Head of Customer Success",
        {"Customer Success Manager": 16, "Support Engineer": 10, "Support Specialist": 12,
         "Onboarding Specialist": 5, "Technical Account Manager": 4},
    ),
    "Finance": (
        24, {"London": 50, "New York": 30, "Berlin": 20}, "CFO",
        {"Finance Manager": 2, "Financial Analyst": 7, "Accountant": 8,
         "Payroll Specialist": 3, "Procurement Specialist": 3},
    ),
    "People": (
        24, {"Berlin": 40, "London": 35, "New York": 25}, "Talent Acquisition Lead",
        {"People Partner": 6, "Recruiter": 6, "Technical Recruiter": 4,
         "People Operations Specialist": 4, "Learning and Development Manager": 1},
    ),
    "Operations": (
        33, {"Berlin": 40, "London": 30, "New York": 25, "Singapore": 5}, "COO",
        {"Office Manager": 4, "IT Support Specialist": 8, "Workplace Coordinator": 6,
         "Legal Counsel": 3, "Business Operations Analyst": 6, "Facilities Coordinator": 5},
    ),
}

FIRST_NAMES = (
    "Aaliyah", "Adam", "Adebayo", "Aiko", "Alejandro", "Alex", "Amara", "Amelia", "Ana",
    "Andrei", "Anika", "Arjun", "Ava", "Ben", "Bianca", "Carlos", "Charlotte", "Chen",
    "Chloe", "Daniel", "Diego", "Dmitri", "Elena", "Elif", "Emma", "Ethan", "Fatima",
    "Felix", "Finn", "Freya", "Gabriel", "Grace", "Hannah", "Hiroshi", "Ibrahim", "Ines",
    "Isabel", "Jack", "Jamal", "Jana", "Javier", "Jonas", "Julia", "Kai", "Karin", "Kwame",
    "Lara", "Leon", "Liam", "Lina", "Lucas", "Maja", "Marco", "Maria", "Mateo", "Maya",
    "Mei", "Mia", "Mohammed", "Nadia", "Niamh", "Nikolai", "Noah", "Nora", "Olivia",
    "Omar", "Oscar", "Paula", "Priya", "Rafael", "Ravi", "Rosa", "Ruth", "Sakura",
    "Samira", "Sebastian", "Sofia", "Sven", "Tariq", "Thomas", "Tobias", "Valentina",
    "Wei", "Yara", "Yusuf", "Zara", "Zoe",
)
LAST_NAMES = (
    "Abbott", "Adeyemi", "Alvarez", "Andersson", "Bauer", "Becker", "Bennett", "Brown",
    "Campbell", "Castillo", "Chowdhury", "Clarke", "Costa", "Davies", "Dubois", "Evans",
    "Fischer", "Fernandes", "Garcia", "Gupta", "Hansen", "Hartmann", "Hughes", "Ito",
    "Jensen", "Kaya", "Khan", "Kim", "Koch", "Kowalski", "Kumar", "Lambert", "Lim",
    "Lindqvist", "Lopez", "Meyer", "Mensah", "Moreau", "Murphy", "Nakamura", "Nguyen",
    "Novak", "Okafor", "Olsen", "Patel", "Petrov", "Quinn", "Reyes", "Richter", "Rossi",
    "Santos", "Schmidt", "Schulz", "Sharma", "Silva", "Singh", "Suzuki", "Tan", "Taylor",
    "Thompson", "Wagner", "Walsh", "Weber", "Wong", "Yilmaz", "Zhang",
)

#: How many generated people (after the well-known) get chat ids in the sample.
LINKED_GENERATED = 5


def main() -> None:
    rows = build_rows(random.Random(SEED))
    with OUT.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    print(f"wrote {len(rows)} people to {OUT}")


def build_rows(rng: random.Random) -> list[tuple[str, ...]]:
    rows = [_row(*person) for person in WELL_KNOWN]
    emails = {row[0] for row in rows}
    for department, (size, cities, head, titles) in DEPARTMENTS.items():
        already = sum(1 for person in WELL_KNOWN if person[2] == department)
        for index in range(size - already):
            first, last = _unique_name(rng, emails)
            email = f"{first.lower()}.{last.lower()}@example.com"
            emails.add(email)
            city = _pick(rng, cities)
            title = head if index == 0 else _pick(rng, titles)
            rows.append(_row(email, f"{first} {last}", department, city, title, ""))
    return [_with_chat_ids(row, n) for n, row in enumerate(rows, start=1)]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _unique_name(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    while True:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if f"{first.lower()}.{last.lower()}@example.com" not in taken:
            return first, last


def _row(
    email: str, name: str, department: str, city: str, title: str, roles: str
) -> tuple[str, ...]:
    return (email, name, department, city, title, TIMEZONES[city], "", "", "", roles)


def _with_chat_ids(row: tuple[str, ...], number: int) -> tuple[str, ...]:
    """The first few people have Slack and Telegram ids, as if they had linked their chat."""
    if number > len(WELL_KNOWN) + LINKED_GENERATED:
        return row
    slack_id = f"U0SAMPLE{number:03d}"
    telegram_id = str(100_000_000 + number)
    return (*row[:6], slack_id, telegram_id, row[8], row[9])


if __name__ == "__main__":
    main()
