"""Spark jobs: the streaming job (readings → live field) and the batch training job.

Kept thin: the logic lives in :mod:`airpath.air` as plain functions, tested without Spark.
"""
