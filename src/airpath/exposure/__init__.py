"""Inhaled-dose model: concentration × minute ventilation × time."""
