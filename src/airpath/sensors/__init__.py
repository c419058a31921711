"""Sensor feeds and the city simulator."""
