"""Deterministic, realistic Yelp-like business records for tests, the demo and the benchmark.

The shape follows the public Yelp open dataset's ``business.json``: one object per line with
``business_id``, ``name``, ``address``, ``city``, ``state``, ``postal_code``, ``latitude``,
``longitude``, ``stars``, ``review_count``, ``is_open``, ``attributes`` (a flat map whose values
are strings, some of them Python-literal-looking, or null), ``categories`` (a comma-separated
string or null) and ``hours`` (day -> "H:M-H:M", or null). Lines average about 650 bytes, and a
few names and streets carry non-ASCII characters.

Everything is driven by :class:`random.Random` with an explicit seed, so the same seed always
gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

_NAME_FIRST = (
    "Golden",
    "Blue",
    "Happy",
    "Lucky",
    "Old Town",
    "Green",
    "Sunset",
    "Riverside",
    "Maple",
    "Royal",
    "Little",
    "Big",
    "Urban",
    "Café",
    "Crème",
    "Bäckerei",
    "Señor",
    "Zoë's",
    "Łódź",
    "東京",
    "Ōsaka",
    "Smörgås",
    "Phở",
    "Ça Va",
)
_NAME_SECOND = (
    "Dragon",
    "Spoon",
    "Garden",
    "Bistro",
    "Diner",
    "Grill",
    "Bakery",
    "Tacos",
    "Noodle House",
    "Pizzeria",
    "Coffee",
    "Brewery",
    "Salon",
    "Auto Repair",
    "Dental",
    "Yoga",
    "Market",
    "Olé",
    "Crêperie",
    "寿司",
    "Brasserie",
    "Kebab",
)
_STREETS = (
    "Main St",
    "Oak Ave",
    "Market St",
    "Chestnut St",
    "Broadway",
    "W Washington St",
    "E Speedway Blvd",
    "S Virginia St",
    "Rue Saint-Denis",
    "Boulevard René-Lévesque",
    "Calle Ocho",
    "N 4th Ave",
)
_CITIES = (
    ("Philadelphia", "PA", 39.95, -75.16, "191"),
    ("Tucson", "AZ", 32.22, -110.97, "857"),
    ("Tampa", "FL", 27.95, -82.46, "336"),
    ("Indianapolis", "IN", 39.77, -86.16, "462"),
    ("Nashville", "TN", 36.16, -86.78, "372"),
    ("New Orleans", "LA", 29.95, -90.07, "701"),
    ("Reno", "NV", 39.53, -119.81, "895"),
    ("Edmonton", "AB", 53.55, -113.49, "T5"),
    ("Saint Louis", "MO", 38.63, -90.20, "631"),
    ("Santa Barbara", "CA", 34.42, -119.70, "931"),
    ("Montréal", "QC", 45.50, -73.57, "H2"),
)
_CATEGORIES = (
    "Restaurants",
    "Food",
    "Shopping",
    "Home Services",
    "Beauty & Spas",
    "Nightlife",
    "Bars",
    "Health & Medical",
    "Local Services",
    "Automotive",
    "Coffee & Tea",
    "Sandwiches",
    "American (Traditional)",
    "Pizza",
    "Mexican",
    "Japanese",
    "Sushi Bars",
    "Breakfast & Brunch",
    "Event Planning & Services",
    "Hair Salons",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_BOOL_ATTRIBUTES = (
    "BusinessAcceptsCreditCards",
    "RestaurantsTakeOut",
    "RestaurantsDelivery",
    "OutdoorSeating",
    "GoodForKids",
    "RestaurantsReservations",
    "HasTV",
    "BikeParking",
    "ByAppointmentOnly",
    "WheelchairAccessible",
    "Caters",
    "DogsAllowed",
)
_CHOICE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "WiFi": ("u'free'", "u'no'", "'free'", "u'paid'"),
    "Alcohol": ("u'none'", "u'full_bar'", "u'beer_and_wine'", "'none'"),
    "NoiseLevel": ("u'average'", "u'quiet'", "u'loud'"),
    "RestaurantsAttire": ("u'casual'", "'casual'", "u'dressy'"),
    "RestaurantsPriceRange2": ("1", "2", "3", "4"),
}


def _business_id(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(22))


def _attributes(rng: random.Random) -> dict[str, str] | None:
    if rng.random() < 0.1:
        return None
    attributes: dict[str, str] = {}
    for name in rng.sample(_BOOL_ATTRIBUTES, rng.randint(2, len(_BOOL_ATTRIBUTES))):
        attributes[name] = rng.choice(("True", "False", "None"))
    for name, choices in _CHOICE_ATTRIBUTES.items():
        if rng.random() < 0.6:
            attributes[name] = rng.choice(choices)
    if rng.random() < 0.5:
        parking = {key: rng.random() < 0.3 for key in ("garage", "street", "validated", "lot")}
        attributes["BusinessParking"] = str(parking)
    if rng.random() < 0.3:
        ambience = {key: rng.random() < 0.2 for key in ("romantic", "casual", "trendy", "classy")}
        attributes["Ambience"] = str(ambience)
    return attributes


def _hours(rng: random.Random) -> dict[str, str] | None:
    if rng.random() < 0.15:
        return None
    hours: dict[str, str] = {}
    for day in _DAYS:
        if rng.random() < 0.85:
            opens = rng.choice((0, 6, 7, 8, 9, 10, 11))
            closes = rng.choice((14, 17, 18, 20, 21, 22, 23))
            hours[day] = f"{opens}:0-{closes}:{rng.choice((0, 30))}"
    return hours


def business(rng: random.Random) -> dict[str, Any]:
    """One Yelp-like business record drawn from ``rng``."""
    city, state, latitude, longitude, postal = rng.choice(_CITIES)
    categories = rng.sample(_CATEGORIES, rng.randint(1, 6))
    return {
        "business_id": _business_id(rng),
        "name": f"{rng.choice(_NAME_FIRST)} {rng.choice(_NAME_SECOND)}",
        "address": f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
        "city": city,
        "state": state,
        "postal_code": f"{postal}{rng.randint(0, 99):02d}",
        "latitude": round(latitude + rng.uniform(-0.3, 0.3), 7),
        "longitude": round(longitude + rng.uniform(-0.3, 0.3), 7),
        "stars": rng.randint(2, 10) / 2,
        "review_count": rng.randint(5, 2500),
        "is_open": int(rng.random() < 0.8),
        "attributes": _attributes(rng),
        "categories": ", ".join(categories) if rng.random() < 0.97 else None,
        "hours": _hours(rng),
    }


# Lines a real upload might contain that the example job must reject or skip, in turn.
_BAD_LINES = (
    b'{"business_id": "truncated", "name": "Half a rec',
    b'["an", "array", "not", "an", "object"]',
    b'{"business_id": "no-stars", "name": "Missing Fields Inc", "review_count": 3}',
    b'{"business_id": "bad-type", "stars": "four", "review_count": 12}',
    b"   ",
    b'{"business_id": "nan", "stars": NaN, "review_count": 1}',
    b"",
)


def iter_business_lines(count: int, *, seed: int = 0, bad_fraction: float = 0.0) -> Iterator[bytes]:
    """``count`` JSON lines (without their ``\\n``), about ``bad_fraction`` of them bad.

    Bad lines cycle through truncated JSON, an array, missing fields, a wrong type, a blank
    line, a non-standard ``NaN`` and an empty line, so a demo run has rejects to show.
    """
    rng = random.Random(seed)
    bad = 0
    for _ in range(count):
        if bad_fraction and rng.random() < bad_fraction:
            yield _BAD_LINES[bad % len(_BAD_LINES)]
            bad += 1
        else:
            yield orjson.dumps(business(rng))


def write_business_file(
    path: Path, size_bytes: int, *, seed: int = 0, bad_fraction: float = 0.0
) -> int:
    """Write whole business lines to ``path`` until it holds at least ``size_bytes``.

    Returns the number of lines written.
    """
    rng = random.Random(seed)
    written = 0
    lines = 0
    batch: list[bytes] = []
    with path.open("wb") as handle:
        while written < size_bytes:
            for line in iter_business_lines(
                1000, seed=rng.getrandbits(64), bad_fraction=bad_fraction
            ):
                batch.append(line)
                written += len(line) + 1
                lines += 1
                if written >= size_bytes:
                    break
            batch.append(b"")
            handle.write(b"\n".join(batch))
            batch.clear()
    return lines
