"""Parse an exported .ics file with the icalendar package and print, as JSON,
what a calendar program would read from it.

Usage: python3 check_ics.py FILE.ics

Prints {"timezones": [TZID, ...], "events": [{"uid", "summary", "start_utc",
"end_utc", "recurrence_id_utc", "rrule", "exdates_utc"}, ...]} on success.
A floating time is printed without Z and a DATE as YYYY-MM-DD.
Exits 1 with the parser's error when the file does not parse.
"""

import json
import sys
from datetime import date, datetime, timezone

import icalendar


def utc_text(value):
    """Return an ISO 8601 string for a decoded DATE or DATE-TIME value: in UTC
    with Z for a zoned date-time, as written without Z for a floating one."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M")
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    if isinstance(value, date):
        return value.isoformat()
    raise ValueError(f"not a date or date-time: {value!r}")


def exdates(event):
    """Return every EXDATE of an event in UTC, whatever its grouping."""
    found = []
    raw = event.get("EXDATE")
    if raw is None:
        return found
    for entry in raw if isinstance(raw, list) else [raw]:
        found.extend(utc_text(item.dt) for item in entry.dts)
    return found


def main(path):
    with open(path, "rb") as handle:
        calendar = icalendar.Calendar.from_ical(handle.read())
    timezones = [str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")]
    events = []
    for event in calendar.walk("VEVENT"):
        recurrence_id = event.get("RECURRENCE-ID")
        rrule = event.get("RRULE")
        events.append(
            {
                "uid": str(event["UID"]),
                "summary": str(event.get("SUMMARY", "")),
                "start_utc": utc_text(event.decoded("DTSTART")),
                "end_utc": utc_text(event.decoded("DTEND")),
                "recurrence_id_utc": utc_text(recurrence_id.dt) if recurrence_id else None,
                "rrule": rrule.to_ical().decode() if rrule else None,
                "exdates_utc": exdates(event),
            }
        )
    print(json.dumps({"timezones": timezones, "events": events}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python3 check_ics.py FILE.ics", file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1])
    except Exception as error:  # Report any parse failure with its cause.
        print(f"error: {sys.argv[1]}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
