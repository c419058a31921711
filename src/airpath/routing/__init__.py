"""The routing engine: snapping, profiles, exact searches, live fields, route assembly."""
